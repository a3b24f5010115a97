"""The walk process of a scan dies with the scan: no orphan after `kill -9` (issue 18, item 1)."""

from __future__ import annotations

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


def _walk_children(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if "scanguard.walk_child" in " ".join(c.cmdline())]


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
    scan = subprocess.Popen(
        [*scanguard_command(), "scan", str(root), "--database", f"sqlite:///{db}", "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    walk: psutil.Process | None = None
    try:
        walk = wait_for(lambda: next(iter(_walk_children(scan.pid)), None), 30, "the scan's walk process")
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
