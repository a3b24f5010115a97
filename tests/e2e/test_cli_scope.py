"""`scanguard scan PATH` with PATH inside a library's root (issue 15, item 1): a scoped scan of that library
— no new library — that survives `kill -9` like any scan; a scope that leaves the library exits 2."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from scanguard.exit_codes import EXIT_OK, EXIT_USAGE
from tests.e2e.test_cli_kill import _tail, child_env, scanguard_command
from tests.support.db import db_rows
from tests.support.trees import build_tree, expected_media, media_path
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def _scan(url: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [*scanguard_command(), "scan", *args, "--database", url, "--no-progress"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def _mtimes(url: str) -> dict[str, float]:
    return {p: float(m) for p, m in db_rows(url, "SELECT path, mtime FROM media_files")}


def _scoped_processed(url: str) -> int:
    """The scoped job's committed progress, read straight from the database."""
    rows = db_rows(url, "SELECT COALESCE(MAX(files_processed), 0) FROM scan_jobs WHERE scope != '[]'")
    return int(rows[0][0])


def _touch_all(root: Path, mtime: int) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.utime(path, ns=(1, mtime * 1_000_000_000))


def test_a_path_inside_a_library_scans_that_part_of_it_and_adds_no_library(
    sqlite_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 300, 10)
    env = child_env(tmp_path)
    assert _scan(sqlite_url, env, str(root)).returncode == EXIT_OK
    _touch_all(root, 1000)  # every file changed on disk
    shutil.rmtree(root / "Artist 002" / "Album 07")

    part = _scan(sqlite_url, env, str(root / "Artist 002"))
    one = _scan(sqlite_url, env, str(root / media_path(133)))

    assert part.returncode == EXIT_OK, part.stderr
    assert "(Artist 002 of library 1)" in part.stderr
    assert one.returncode == EXIT_OK, one.stderr
    assert db_rows(sqlite_url, "SELECT COUNT(*) FROM libraries") == [(1,)], "no new library"
    jobs = db_rows(
        sqlite_url, "SELECT scope, trigger, status, files_changed, files_removed FROM scan_jobs ORDER BY id"
    )
    assert jobs[1:] == [
        ('["Artist 002"]', "user", "completed", 90, 10),
        (f'["{media_path(133)}"]', "user", "completed", 1, 0),
    ]
    fresh = {p for p, m in _mtimes(sqlite_url).items() if m == 1000.0}
    assert fresh == {p for p in expected_media(root) if p.startswith("Artist 002/")} | {media_path(133)}


@pytest.mark.parametrize("bad", ["../elsewhere", "Artist 000/../..", "/etc"])
def test_a_scope_leaving_the_library_exits_2_with_a_clear_message_and_starts_nothing(
    bad: str, sqlite_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 20, 0)
    env = child_env(tmp_path)
    assert _scan(sqlite_url, env, str(root)).returncode == EXIT_OK

    refused = _scan(sqlite_url, env, bad, "--library", "1")

    assert refused.returncode == EXIT_USAGE, refused.stderr
    assert "scanguard: error: scope path" in refused.stderr
    assert ("outside the library root" in refused.stderr) or ("'..'" in refused.stderr)
    assert db_rows(sqlite_url, "SELECT COUNT(*) FROM scan_jobs") == [(1,)], "no job started"


def test_kill_9_of_a_scoped_scan_then_the_same_command_resumes_it_exactly(
    sqlite_url: str, tmp_path: Path
) -> None:
    """kill -9 mid-way through a scoped scan; the rerun resumes the orphaned job (same scope) from its
    checkpoint: every file of the scope written once, counted once, nothing outside it touched."""
    root = tmp_path / "lib"
    build_tree(root / "Big", 1500, 0, hidden=False, symlinks=False)
    build_tree(root / "Other", 300, 0, hidden=False, symlinks=False)
    env = child_env(tmp_path)
    assert _scan(sqlite_url, env, str(root)).returncode == EXIT_OK
    _touch_all(root, 1000)
    scoped = env | {"SCANGUARD_SCAN_BATCH_SIZE": "2"}
    command = [*scanguard_command(), "scan", str(root / "Big"), "--database", sqlite_url, "--no-progress"]

    log = tmp_path / "killed.log"
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=scoped, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(
                lambda: proc.poll() is not None or _scoped_processed(sqlite_url) >= 100,
                60,
                "the scoped scan to commit some batches",
            )
            assert proc.poll() is None, f"the scan ended before it could be killed:\n{_tail(log)}"
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    [(job_id, status, processed)] = db_rows(
        sqlite_url, "SELECT id, status, files_processed FROM scan_jobs WHERE scope != '[]'"
    )
    assert status == "running", "killed mid-scan, the row still says running"
    assert 0 < processed < 1500

    status = subprocess.run(
        [*scanguard_command(), "status", "--database", sqlite_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == EXIT_OK, status.stderr
    assert f"job {job_id} library 1: running" in status.stdout
    assert "user scan of Big" in status.stdout, status.stdout

    rerun = _scan(sqlite_url, env, str(root / "Big"))

    assert rerun.returncode == EXIT_OK, rerun.stderr
    assert f"resuming job {job_id}" in rerun.stderr
    jobs = db_rows(sqlite_url, "SELECT id, status, files_processed, files_changed FROM scan_jobs ORDER BY id")
    assert jobs[1:] == [(job_id, "completed", 1500, 1500)], "one scoped job, every file once"
    paths = [p for (p,) in db_rows(sqlite_url, "SELECT path FROM media_files")]
    assert len(paths) == len(set(paths)) == 1800
    mtimes = _mtimes(sqlite_url)
    assert {p for p, m in mtimes.items() if m == 1000.0} == {p for p in paths if p.startswith("Big/")}
