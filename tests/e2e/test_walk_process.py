"""The processes forked for a scan (its walk, its workers) die with the scan: no orphan after `kill -9`,
even of one stopped where no code of its own runs (issue 18, item 1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.e2e.test_cli_kill import child_env, committed_count, scanguard_command
from tests.support.hostproc import NAME as HOST
from tests.support.hostproc import pids
from tests.support.trees import build_tree
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.timeout(90)]


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


def test_a_worker_stopped_in_its_file_is_killed_with_the_scan_that_started_it(tmp_path: Path) -> None:
    """A worker hangs in a host processor and is stopped (as if stuck in the kernel), then the scan is
    killed by SIGKILL: the forkserver, which no child keeps alive, ends with the scan, and the worker with
    it (parent-death signal)."""
    root = tmp_path / "library"
    (root / "Bad").mkdir(parents=True)
    (root / "Bad" / "hang.flac").write_bytes(b"fLaC" + b"\0" * 64)
    db = tmp_path / "scan.db"
    env = child_env(tmp_path, SCANGUARD_SCAN_FILE_TIMEOUT="60s", SCANGUARD_SCAN_WORKERS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    command = [*scanguard_command(), "scan", str(root), "--database", f"sqlite:///{db}", "--no-progress"]
    scan = subprocess.Popen(
        [*command, "--processors", HOST], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    worker: psutil.Process | None = None
    try:
        pid = wait_for(lambda: next(iter(pids(root)), None), 60, "the worker in the hanging file")
        worker = psutil.Process(pid)
        worker.suspend()
        os.kill(scan.pid, signal.SIGKILL)
        scan.wait(10)
        wait_for(lambda: _gone(worker), 10, "the stopped worker to die with the scan")
    finally:
        if scan.poll() is None:
            scan.kill()
            scan.wait(10)
        if worker is not None and not _gone(worker):
            worker.kill()
