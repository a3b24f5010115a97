"""Ctrl-C (SIGINT) of a real `scanguard scan` pauses it cleanly; running the command again resumes it."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from scanguard.exit_codes import EXIT_INTERRUPTED
from tests.e2e.test_cli_kill import _tail, child_env, committed_count, scanguard_command
from tests.support.db import db_rows
from tests.support.trees import build_tree, expected_media
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

N_MEDIA = 2000
BATCH = 5


def test_ctrl_c_pauses_a_cli_scan_at_its_checkpoint_and_the_same_command_resumes_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    """SIGINT mid-scan: exit 130, the job paused with reason shutdown at a committed checkpoint; the rerun
    says it resumes, exits 0, and the index equals the tree with no duplicate and no second job."""
    root = tmp_path / "lib"
    build_tree(root, N_MEDIA, 50)
    expected = expected_media(root)
    env = child_env(tmp_path, SCANGUARD_SCAN_BATCH_SIZE=str(BATCH))
    command = [*scanguard_command(), "scan", str(root), "--database", sqlite_url, "--no-progress"]

    first_log = tmp_path / "first.log"
    with first_log.open("w") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            wait_for(
                lambda: proc.poll() is not None or committed_count(sqlite_url) >= 20 * BATCH,
                60,
                "a few batches",
            )
            assert proc.poll() is None, (
                f"the scan finished before it could be interrupted:\n{_tail(first_log)}"
            )
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert code == EXIT_INTERRUPTED, _tail(first_log)
    [(job_id, status, reason, checkpoint, processed)] = db_rows(
        sqlite_url, "SELECT id, status, pause_reason, checkpoint, files_processed FROM scan_jobs"
    )
    assert (status, reason) == ("paused", "shutdown")
    assert checkpoint
    assert 0 < processed < len(expected)
    rows_at_pause = db_rows(sqlite_url, "SELECT COUNT(*) FROM media_files")[0][0]
    assert rows_at_pause >= processed - BATCH, "what the job counted is in the index"

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=90, check=False)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming job {job_id}" in second.stderr
    jobs = db_rows(sqlite_url, "SELECT id, status, files_processed FROM scan_jobs")
    assert jobs == [(job_id, "completed", len(expected))], "one job, resumed, counted exactly once"
    paths = [p for (p,) in db_rows(sqlite_url, "SELECT path FROM media_files")]
    assert len(paths) == len(set(paths))
    assert set(paths) == expected
    kinds = [
        (kind, json.loads(data).get("reason"))
        for kind, data in db_rows(
            sqlite_url, f"SELECT kind, data FROM events WHERE job_id = {job_id} ORDER BY id"
        )
    ]
    assert kinds == [
        ("job.started", None),
        ("job.paused", "shutdown"),
        ("job.resumed", None),
        ("job.completed", None),
    ]
