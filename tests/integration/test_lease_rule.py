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
