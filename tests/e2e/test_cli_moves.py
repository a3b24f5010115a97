"""kill -9 of a real `scanguard scan` while it moves rows (issue 15, item 2): the rerun resumes the job and
every moved file keeps its row — same id, no duplicate, no row left missing, each move told once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from scanguard.exit_codes import EXIT_OK
from tests.e2e.test_cli_kill import _tail, child_env, scanguard_command
from tests.support.db import db_rows
from tests.support.trees import build_tree, expected_media
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def _second_job_processed(url: str) -> int:
    rows = db_rows(url, "SELECT COALESCE(MAX(files_processed), 0) FROM scan_jobs WHERE id > 1")
    return int(rows[0][0])


@pytest.mark.parametrize("kill_after", [150, 900])
def test_kill_9_in_the_middle_of_moves_then_the_rerun_keeps_every_row(
    kill_after: int, sqlite_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 1500, 0, hidden=False, symlinks=False)
    env = child_env(tmp_path)
    command = [*scanguard_command(), "scan", str(root), "--database", sqlite_url, "--no-progress"]
    assert subprocess.run(command, env=env, capture_output=True, timeout=120, check=False).returncode == 0
    before = dict(db_rows(sqlite_url, "SELECT path, id FROM media_files"))
    # renamed while nothing ran: new names sorting before and after the old ones
    renames = {"Artist 012": "Artist 002 (live)", "Artist 003": "Artist 014 (remaster)", "Artist 007": "Zz"}
    for old, new in renames.items():
        (root / old).rename(root / new)
    moved = {
        p: renames[p.split("/", 1)[0]] + "/" + p.split("/", 1)[1]
        for p in before
        if p.split("/", 1)[0] in renames
    }
    assert len(moved) == 300

    log = tmp_path / "killed.log"
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=env | {"SCANGUARD_SCAN_BATCH_SIZE": "2"}, stdout=out, stderr=out)
        try:
            wait_for(
                lambda: proc.poll() is not None or _second_job_processed(sqlite_url) >= kill_after,
                60,
                f"the rescan to commit {kill_after} files",
            )
            assert proc.poll() is None, f"the rescan ended before it could be killed:\n{_tail(log)}"
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert rerun.returncode == EXIT_OK, rerun.stderr
    assert "resuming job 2" in rerun.stderr
    after = dict(db_rows(sqlite_url, "SELECT path, id FROM media_files"))
    assert set(after) == expected_media(root), "no row left at an old path, none doubled"
    for old, new in moved.items():
        assert after[new] == before[old], f"{old} → {new} kept its id"
    assert db_rows(sqlite_url, "SELECT COUNT(*) FROM media_files WHERE missing_since IS NOT NULL") == [(0,)]
    assert db_rows(sqlite_url, "SELECT status, files_moved, files_processed FROM scan_jobs WHERE id = 2") == [
        ("completed", 300, 1500)
    ]
    told = [
        (data["from"], data["to"])
        for (data,) in (
            (json.loads(d),)
            for (d,) in db_rows(sqlite_url, "SELECT data FROM events WHERE kind = 'file.moved'")
        )
    ]
    assert sorted(told) == sorted(moved.items()), "each move told once"
