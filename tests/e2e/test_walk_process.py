"""The walk process of a scan dies with the scan: no orphan after `kill -9` (issue 18, item 1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.e2e.test_cli_kill import child_env, committed_count, scanguard_command
from tests.support.trees import build_tree
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(60)]


def _walk_pid(log: Path) -> int | None:
    """The walk process's pid, from the scan's `scan.walking` log line (the forkserver forks it)."""
    for line in log.read_text(errors="replace").splitlines():
        if '"scan.walking"' in line:
            return int(json.loads(line)["walk_pid"])
    return None


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_walk_process_stuck_in_its_walk_is_killed_with_the_scan_that_started_it(tmp_path: Path) -> None:
    """The walk process is stopped (as if hung on a dead mount: it neither reads nor writes), then the scan
    process is killed by SIGKILL: the walk process dies with it, by the parent-death signal."""
    root = tmp_path / "library"
    build_tree(root, n_media=3000, symlinks=False)
    db = tmp_path / "scan.db"
    # small batches: the scan runs for a few seconds, long enough to see its walk process
    env = child_env(tmp_path, SCANGUARD_SCAN_BATCH_SIZE="5", SCANGUARD_SCAN_WALKERS="1")
    env["SCANGUARD_LOG_LEVEL"] = "info"  # its `scan.walking` line names the walk process
    log = tmp_path / "scan.log"
    with log.open("wb") as err:
        scan = subprocess.Popen(
            [*scanguard_command(), "scan", str(root), "--database", f"sqlite:///{db}", "--no-progress"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    walk: psutil.Process | None = None
    try:
        pid = wait_for(lambda: _walk_pid(log), 30, "the scan's walk process")
        walk = psutil.Process(pid)
        assert scan.pid in [p.pid for p in walk.parents()], (
            "a descendant of the scan (its forkserver's child)"
        )
        # once a batch is committed, the walk process is walking (its start-up, parent-death signal set, is over)
        wait_for(lambda: committed_count(f"sqlite:///{db}"), 30, "the scan's first commit")
        walk.suspend()  # SIGSTOP: only a signal that kills can end it now
        os.kill(scan.pid, signal.SIGKILL)
        scan.wait(10)
        wait_for(lambda: _gone(walk), 10, "the walk process to die with its parent")
    finally:
        if scan.poll() is None:
            scan.kill()
            scan.wait(10)
        if walk is not None and not _gone(walk):
            walk.kill()
