"""One active job per library: the library actor's mailbox and the partial unique index (issue 2, item 1)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

import scanguard
from tests.support.db import db_exec, db_rows, is_sqlite
from tests.support.trees import build_tree, expected_media
from tests.support.waiting import QUIET_SAFEGUARDS, ProcessorGate

pytestmark = pytest.mark.timeout(60)
THREADS = 100


def test_hundred_threads_starting_one_library_create_one_job_and_ninety_nine_busy_errors_name_it(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """100 real threads released by one barrier: exactly one job; each other call raises LibraryBusy(job)."""
    root = tmp_path / "lib"
    build_tree(root, 60, 5)
    first = "Artist 000/Album 00/01 - Track 0.flac"
    gate = ProcessorGate([first])  # holds the scan inside its first batch, so it stays active throughout
    rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS), processor=gate)
    library = rt.add_library(root)
    barrier = threading.Barrier(THREADS)
    results: list[object] = [None] * THREADS

    def start(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = rt.start_scan(library.id)
        except Exception as exc:  # noqa: BLE001 - every outcome is collected and judged below
            results[i] = exc

    threads = [threading.Thread(target=start, args=(i,), name=f"starter-{i}") for i in range(THREADS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=45)
        assert not any(t.is_alive() for t in threads), "every start call returned"
    finally:
        gate.open_all()

    jobs = [r for r in results if isinstance(r, scanguard.Job)]
    busy = [r for r in results if isinstance(r, scanguard.LibraryBusy)]
    others = [r for r in results if not isinstance(r, scanguard.Job | scanguard.LibraryBusy)]
    assert others == [], f"unexpected outcomes: {others[:3]}"
    assert len(jobs) == 1, f"{len(jobs)} jobs were created"
    assert len(busy) == THREADS - 1
    (job,) = jobs
    assert {b.job_id for b in busy} == {job.id}, "every LibraryBusy names the one job"
    assert {b.library_id for b in busy} == {library.id}
    assert all(b.status == 409 for b in busy)
    assert db_rows(db_url, "SELECT id FROM scan_jobs") == [(job.id,)]

    done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=30)
    assert done.status == "completed", done
    paths = [p for (p,) in db_rows(db_url, f"SELECT path FROM media_files WHERE library_id = {library.id}")]
    assert sorted(paths) == sorted(expected_media(root))


def test_the_database_refuses_a_second_active_job_for_a_library_even_without_the_actor(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """The partial unique index is the second lock: a raw INSERT of another running job fails."""
    root = tmp_path / "lib"
    build_tree(root, 5, 0, hidden=False, symlinks=False)
    gate = ProcessorGate(["Artist 000/Album 00/01 - Track 0.flac"])
    rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS), processor=gate)
    library = rt.add_library(root)
    try:
        job = rt.start_scan(library.id)
        now = "CURRENT_TIMESTAMP"
        insert = (
            "INSERT INTO scan_jobs (library_id, status, created_at, updated_at) "
            f"VALUES ({library.id}, 'paused', {now}, {now})"
        )
        error = sqlite3.IntegrityError if is_sqlite(db_url) else asyncpg.UniqueViolationError
        with pytest.raises(error):
            db_exec(db_url, insert)
        assert db_rows(db_url, "SELECT id, status FROM scan_jobs") == [(job.id, "running")]
        # a finished job does not count: once this one completes another may be inserted
    finally:
        gate.open_all()
    assert rt.wait_for_job(job.id, ("completed", "failed"), timeout=30).status == "completed"
    db_exec(db_url, insert)
    assert len(db_rows(db_url, "SELECT id FROM scan_jobs")) == 2
