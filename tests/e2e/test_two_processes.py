"""Several processes on one database (DESIGN §8): the lease keeps a library's scan to one of them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_cli_kill import _processed, child_env, scanguard_command
from tests.support.db import db_rows
from tests.support.trees import build_tree, expected_media
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def test_a_second_process_scanning_the_same_folder_is_refused_and_leaves_the_first_ones_scan_alone(
    db_url: str, tmp_path: Path
) -> None:
    """While one `scanguard scan` runs, the same command in another process exits 1 naming the busy job;
    its boot recovery does not take the live scan for an orphan; the first run completes exactly."""
    root = tmp_path / "lib"
    build_tree(root, 1500, 20)
    expected = expected_media(root)
    env = child_env(tmp_path, SCANGUARD_SCAN_BATCH_SIZE="5")
    command = [*scanguard_command(), "scan", str(root), "--database", db_url, "--no-progress"]
    first_log = tmp_path / "first.log"
    with first_log.open("w") as out:
        first = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            wait_for(
                lambda: first.poll() is not None or _processed(db_url) >= 10, 60, "the first scan to commit"
            )
            assert first.poll() is None, "the first scan ended before the second could race it"
            second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
            first_code = first.wait(timeout=90)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(timeout=10)
    assert second.returncode == 1, second.stderr[-2000:]
    assert "is busy" in second.stderr
    assert first_code == 0, first_log.read_text(errors="replace")[-2000:]
    jobs = db_rows(db_url, "SELECT status, pause_reason, files_processed FROM scan_jobs")
    assert jobs == [("completed", None, len(expected))], "one job, never paused by the other process"
    paths = [p for (p,) in db_rows(db_url, "SELECT path FROM media_files")]
    assert sorted(paths) == sorted(expected)
    orphan_events = db_rows(db_url, "SELECT COUNT(*) FROM events WHERE kind = 'watchdog.orphan_found'")
    assert orphan_events == [(0,)]
