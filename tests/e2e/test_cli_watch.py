"""`scanguard watch PATH` in a real process: adds the folder, scans it, follows its changes with one line
per job, and exits 0 on SIGTERM or Ctrl-C; `scanguard scan` starts no watcher."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from scanguard.exit_codes import EXIT_OK
from tests.e2e.test_cli_kill import child_env, scanguard_command
from tests.support.db import db_rows

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

FAST = {"SCANGUARD_WATCH_SETTLE": "0.2", "SCANGUARD_WATCH_RESCAN_INTERVAL": "0"}


def lines_of(proc: subprocess.Popen[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """Its stdout, line by line, read on a thread (so a test waits with a deadline, never blocks)."""
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    return out, reader


def next_line(lines: queue.Queue[str], containing: str, timeout: float = 30) -> str:
    try:
        while True:
            line = lines.get(timeout=timeout)
            if containing in line:
                return line
    except queue.Empty:
        raise AssertionError(f"no line with {containing!r} within {timeout:g}s") from None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_watch_scans_then_prints_a_line_per_job_and_exits_0_on_a_signal(
    sqlite_url: str, tmp_path: Path, signum: int
) -> None:
    root = tmp_path / "music"
    (root / "a").mkdir(parents=True)
    (root / "a" / "one.flac").write_bytes(b"1" * 10)
    command = [*scanguard_command(), "watch", str(root), "--database", sqlite_url]
    proc = subprocess.Popen(
        command,
        env=child_env(tmp_path, **FAST),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines, reader = lines_of(proc)
    try:
        first = next_line(lines, "catch_up completed")
        assert "the whole library" in first
        (root / "a" / "two.flac").write_bytes(b"2" * 10)
        line = next_line(lines, "watch completed")
        assert "a/two.flac" in line
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == EXIT_OK
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(10)  # at the end of its output
        assert proc.stdout is not None
        proc.stdout.close()
    assert db_rows(sqlite_url, "SELECT watch FROM libraries") == [(1,)]
    paths = {p for (p,) in db_rows(sqlite_url, "SELECT path FROM media_files WHERE missing_since IS NULL")}
    assert paths == {"a/one.flac", "a/two.flac"}


def test_a_one_shot_scan_of_a_watched_library_starts_no_watcher(sqlite_url: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    (root / "x.flac").write_bytes(b"x")
    env = child_env(tmp_path, SCANGUARD_WATCH_DEFAULT="true", **FAST)
    command = [*scanguard_command(), "scan", str(root), "--database", sqlite_url, "--no-progress"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert db_rows(sqlite_url, "SELECT trigger FROM scan_jobs") == [("user",)]
    assert db_rows(sqlite_url, "SELECT watch, watch_owner FROM libraries") == [(1, None)]
