"""What the safeguard tests share: deadline waits, event trails, a hanging filesystem, direct DB views."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.db import db_rows, db_value, is_sqlite
from tests.support.waiting import UNWATCHED

T = TypeVar("T")

# every safeguard that is not under test is pushed out of the way: a test that wants one shrinks it
QUIET_SAFEGUARDS: dict[str, Any] = {
    "watchdog_interval": 3600,
    "state_validation_interval": 0,
    "cleanup_interval": 0,
    "health_check_interval": 0,
    "stall_threshold": 60,
    "orphaned_job_threshold": 60,
    "retry_interval": 0.05,
}


def stays_false(predicate: Callable[[], object], duration: float, interval: float = 0.02) -> bool:
    """True when `predicate` stays falsy for the whole `duration` (a deadline poll, not a sleep)."""
    deadline = time.monotonic() + duration
    pause = threading.Event()
    while time.monotonic() < deadline:
        if predicate():
            return False
        pause.wait(interval)
    return not predicate()


# ---- events ---------------------------------------------------------------------------------------


def _data(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        return dict(json.loads(raw))
    return dict(raw)


def job_events(url: str, job_id: int) -> list[tuple[str, dict[str, Any]]]:
    """A job's events, oldest first, read straight from the events table."""
    rows = db_rows(url, f"SELECT kind, data FROM events WHERE job_id = {int(job_id)} ORDER BY id")
    return [(kind, _data(data)) for kind, data in rows]


def trail(url: str, job_id: int, kinds: Iterable[str] | None = None) -> list[tuple[str, Any]]:
    """The ordered (kind, data.reason) decisions of a job, optionally only some kinds."""
    wanted = set(kinds) if kinds is not None else None
    return [
        (kind, data.get("reason"))
        for kind, data in job_events(url, job_id)
        if wanted is None or kind in wanted
    ]


def kinds_of(url: str, job_id: int) -> list[str]:
    return [kind for kind, _ in job_events(url, job_id)]


# ---- the database, read directly --------------------------------------------------------------------


def indexed_paths(url: str, library_id: int) -> list[str]:
    """Every media_files path of a library, duplicates included (a set would hide them)."""
    rows = db_rows(url, f"SELECT path FROM media_files WHERE library_id = {int(library_id)} ORDER BY path")
    return [r[0] for r in rows]


def job_row(url: str, job_id: int) -> dict[str, Any]:
    rows = db_rows(
        url,
        "SELECT status, pause_reason, restarts, last_error, files_found, files_processed, checkpoint, "
        f"fencing_token, owner FROM scan_jobs WHERE id = {int(job_id)}",
    )
    if not rows:
        return {}
    keys = (
        "status",
        "pause_reason",
        "restarts",
        "last_error",
        "files_found",
        "files_processed",
        "checkpoint",
        "fencing_token",
        "owner",
    )
    return dict(zip(keys, rows[0], strict=True))


def count(url: str, sql: str) -> int:
    return int(db_value(url, sql))


def assert_database_valid(url: str) -> None:
    """The invariants of DESIGN §4 that hold at rest, checked on the rows themselves.

    Counters: a completed job processed every file it found, discovered no more than it processed, and
    a library's latest completed job processed exactly the files the library has (trees are not edited).
    """
    several = db_rows(
        url,
        "SELECT library_id, COUNT(*) FROM scan_jobs WHERE status IN ('pending', 'running', 'paused') "
        "GROUP BY library_id HAVING COUNT(*) > 1",
    )
    assert several == [], f"libraries with more than one active job: {several}"
    dupes = db_rows(
        url,
        "SELECT library_id, path, COUNT(*) FROM media_files GROUP BY library_id, path HAVING COUNT(*) > 1",
    )
    assert dupes == [], f"duplicate media rows: {dupes}"
    completed = db_rows(
        url,
        "SELECT id, library_id, files_found, files_processed FROM scan_jobs WHERE status = 'completed' "
        "ORDER BY id",
    )
    latest: dict[int, tuple[int, int]] = {}
    for job_id, library_id, found, processed in completed:
        assert found == processed, (
            f"completed job {job_id}: files_found {found} != files_processed {processed}"
        )
        discovered = count(url, f"SELECT COUNT(*) FROM media_files WHERE scan_job_id = {int(job_id)}")
        assert discovered <= processed, (
            f"completed job {job_id} discovered {discovered} > processed {processed}"
        )
        latest[int(library_id)] = (int(job_id), int(processed))
    for library_id, (job_id, processed) in latest.items():
        present = count(
            url, f"SELECT COUNT(*) FROM media_files WHERE library_id = {library_id} AND missing_since IS NULL"
        )
        assert processed == present, (
            f"latest completed job {job_id}: processed {processed} != {present} files"
        )


def days_ago_literal(url: str, days: float) -> str:
    """A SQL timestamp literal `days` ago, in the form scanguard stores on this backend."""
    stamp = datetime.now(UTC) - timedelta(days=days)
    if is_sqlite(url):
        return "'" + stamp.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") + "'"
    return "'" + stamp.isoformat() + "'::timestamptz"


# ---- a filesystem that hangs ------------------------------------------------------------------------


class HangingFileSystem:
    """The real filesystem, except that listing a chosen directory blocks until `release()`.

    It also counts how often each directory was listed, to show that a resumed walk skips the
    directories before its checkpoint.
    """

    def __init__(self, hang_on: Iterable[str] = (), limit: float = 60.0) -> None:
        self.hang_on = {os.path.normpath(p) for p in hang_on}
        self.limit = limit
        self.entered = threading.Event()
        self.released = threading.Event()
        self.finished = threading.Event()
        self.listings: Counter[str] = Counter()
        self.hanging: set[str] = set()
        self.hung_threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        _LIVE_HANGS.add(self)

    def release(self) -> None:
        self.released.set()

    def release_and_join(self, timeout: float = 10.0) -> None:
        """Let every hung walk go on, and wait (with a deadline) until their threads have ended."""
        self.release()
        deadline = time.monotonic() + timeout
        for thread in list(self.hung_threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self.hung_threads if t.is_alive()]
        assert not alive, f"released scan threads still running after {timeout:g}s: {alive}"

    def scandir(self, path: str) -> list[os.DirEntry[str]]:
        key = os.path.normpath(path)
        with self._lock:
            self.listings[key] += 1
        if key in self.hang_on and not self.released.is_set():
            with self._lock:
                self.hanging.add(key)
                self.hung_threads.append(threading.current_thread())
            self.entered.set()
            # bounded, so that a failing test cannot leave a thread behind for ever
            self.released.wait(self.limit)
            self.finished.set()
        with os.scandir(path) as it:
            return list(it)

    def stat(self, path: str, *, follow_symlinks: bool) -> os.stat_result:
        return os.stat(path, follow_symlinks=follow_symlinks)


_LIVE_HANGS: weakref.WeakSet[HangingFileSystem] = weakref.WeakSet()


@pytest.fixture
def release_hung_walks() -> Iterator[None]:
    """Whatever happens in the test, no walk stays hung after it (a failed test must not leak threads)."""
    yield
    for fs in list(_LIVE_HANGS):
        fs.release()


def settle_commits(rt: Any) -> None:
    """A round trip through the store's mailbox: every batch a scan sent before this call has committed."""
    rt.store.ping()


# ---- real processes ---------------------------------------------------------------------------------


def scanguard_command() -> list[str]:
    """The installed console script next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("scanguard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "scanguard.cli"]


def child_env(**settings: str) -> dict[str, str]:
    """This environment without the developer's SCANGUARD_* settings, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGUARD_")}
    env.update(UNWATCHED)
    env.update(settings)
    return env
