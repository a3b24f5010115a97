"""Issue 16.1: every lease follows the one orphan rule — a dead process on this host holds none, at once."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import scanguard
from tests.support.db import db_exec, db_value
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(60)


def _dead_local_owner() -> str:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return f"{socket.gethostname()}:{int(child.stdout)}:{int(time.time()) - 5}:abcd"


def _hold_lease(url: str, library_id: int, owner: str) -> None:
    """A lease row as a process leaves it: held by `owner` for another minute, token 7."""
    until = "datetime('now', '+60 seconds')" if url.startswith("sqlite") else "now() + interval '60 seconds'"
    db_exec(
        url,
        f"DELETE FROM library_leases WHERE library_id = {library_id}",
        f"INSERT INTO library_leases (library_id, owner, token, expires_at) "
        f"VALUES ({library_id}, '{owner}', 7, {until})",
    )


def test_a_library_lease_left_by_a_dead_process_on_this_host_is_taken_at_once(
    db_url: str,
    tmp_path: Path,
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """A start on a library whose unexpired lease names a dead local process goes ahead, with a newer token."""
    rt = runtime_factory()
    library = rt.add_library(tmp_path)
    _hold_lease(db_url, library.id, _dead_local_owner())
    job = rt.start_scan(library.id)
    assert db_value(db_url, f"SELECT token FROM library_leases WHERE library_id = {library.id}") > 7
    assert rt.wait_for_job(job.id, timeout=30).status == "completed"


def test_a_library_lease_of_another_host_is_respected_until_it_expires(
    db_url: str,
    tmp_path: Path,
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """A remote owner cannot be checked: its unexpired lease keeps the library busy."""
    rt = runtime_factory()
    library = rt.add_library(tmp_path)
    _hold_lease(db_url, library.id, "elsewhere.example:123:1700000000:abcd")
    with pytest.raises(scanguard.LibraryBusy):
        rt.start_scan(library.id)
    assert db_value(db_url, f"SELECT count(*) FROM scan_jobs WHERE library_id = {library.id}") == 0


def test_a_watch_left_by_a_dead_process_on_this_host_is_taken_at_once(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """A library's watch lease names a dead local process and has a minute left: a new runtime watches it
    at once (not after the minute); the watch state says so."""
    first = runtime_factory(make_config(watch={"enabled": False}))
    library = first.add_library(tmp_path, watch=True)
    first.stop()
    until = (
        "datetime('now', '+60 seconds')" if db_url.startswith("sqlite") else "now() + interval '60 seconds'"
    )
    db_exec(
        db_url,
        f"UPDATE libraries SET watch_owner = '{_dead_local_owner()}', watch_expires_at = {until} "
        f"WHERE id = {library.id}",
    )
    rt = runtime_factory(make_config(safeguards={"lease_ttl": 60}))
    wait_for(
        lambda: db_value(db_url, f"SELECT watch_owner FROM libraries WHERE id = {library.id}") == rt.instance,
        15,
        "the new runtime to hold the dead process's watch",
    )
    wait_for(lambda: rt.get_library(library.id).watch.state == "watching", 15, "watching")
