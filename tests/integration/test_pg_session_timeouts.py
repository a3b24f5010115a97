"""DESIGN §8: PostgreSQL sessions carry lock, statement and idle-in-transaction timeouts derived from the
settings; a lock wait that times out is retried with backoff, and never hangs the caller."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

import scanguard
from scanguard.config import DatabaseConfig, SafeguardConfig
from scanguard.errors import StoreUnavailable
from scanguard.store.engine import SessionTimeouts, create_engine, migration_lock
from tests.support.db import db_rows
from tests.support.trees import build_tree
from tests.support.waiting import QUIET_SAFEGUARDS, GatedFileSystem, wait_for

LEASE_TTL = 2.0  # lock_timeout = 0.5 s, idle_in_transaction = 1 s


def test_the_session_timeouts_are_derived_from_lease_ttl_and_operation_timeout() -> None:
    """lock = min(operation_timeout, lease_ttl) / 4, statement = operation_timeout, idle = lease_ttl / 2."""
    timeouts = SessionTimeouts.from_config(SafeguardConfig(operation_timeout=30, lease_ttl=60))
    assert timeouts == SessionTimeouts(lock=7.5, statement=30, idle_in_transaction=30)
    assert timeouts.server_settings() == {
        "lock_timeout": "7500",
        "statement_timeout": "30000",
        "idle_in_transaction_session_timeout": "30000",
    }
    assert SessionTimeouts.from_config(SafeguardConfig(operation_timeout=10, lease_ttl=3)).lock == 0.75


class RowLock:
    """Another session holding the job's row lock in an open transaction, until released."""

    def __init__(self, url: str, job_id: int) -> None:
        self.url = url
        self.job_id = job_id
        self.taken = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._hold()), daemon=True)

    async def _hold(self) -> None:
        conn = await asyncpg.connect(self.url, timeout=10)
        try:
            async with conn.transaction():
                await conn.execute(f"SELECT 1 FROM scan_jobs WHERE id = {self.job_id} FOR UPDATE")
                self.taken.set()
                while not self.release.is_set():
                    await asyncio.sleep(0.02)
        finally:
            await conn.close()

    def __enter__(self) -> RowLock:
        self.thread.start()
        assert self.taken.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(10)


def _held_scan(
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    **database: object,
) -> tuple[scanguard.Runtime, GatedFileSystem, int]:
    root = tmp_path / "lib"
    build_tree(root, 300, 0)
    gate = GatedFileSystem(root / "Artist 001")
    cfg = make_config(
        safeguards={**QUIET_SAFEGUARDS, "lease_ttl": LEASE_TTL, "operation_timeout": 30},
        # one walker: the walk itself waits at the gate (more would list ahead and go on committing)
        scan={"batch_size": 5, "walkers": 1},
        database=database,
    )
    rt = runtime_factory(cfg, fs=gate)
    job = rt.start_scan(rt.add_library(root).id)
    assert gate.reached.wait(30)
    rt.store.ping()  # every batch sent so far has committed
    return rt, gate, job.id


@pytest.mark.postgres
@pytest.mark.timeout(60)
def test_a_pause_waiting_behind_another_sessions_row_lock_is_retried_and_succeeds_once_it_is_released(
    pg_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """The pause's lock wait times out (0.5 s) again and again while the row is held; it is retried, and
    it succeeds as soon as the row is released — instead of failing at the first timeout."""
    rt, gate, job_id = _held_scan(tmp_path, make_config, runtime_factory)
    outcome: list[object] = []
    try:
        with RowLock(pg_url, job_id):
            pausing = threading.Thread(target=lambda: outcome.append(_try(rt.pause_scan, job_id)))
            started = time.monotonic()
            pausing.start()
            # it keeps trying well past several lock timeouts without giving up
            wait_for(lambda: time.monotonic() - started > 4 * LEASE_TTL / 4, 10, "several lock timeouts")
            assert pausing.is_alive()
            assert not outcome
        pausing.join(30)
    finally:
        gate.release.set()
    assert len(outcome) == 1
    job = outcome[0]
    assert isinstance(job, scanguard.Job), job
    assert job.status == "paused"
    assert db_rows(pg_url, f"SELECT status FROM scan_jobs WHERE id = {job_id}") == [("paused",)]


@pytest.mark.postgres
@pytest.mark.timeout(60)
def test_a_lock_held_for_ever_fails_the_operation_with_store_unavailable_instead_of_hanging(
    pg_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """With the row held for the whole test, the pause gives up after its retries (each wait bounded by
    lock_timeout) with StoreUnavailable, and the job is untouched."""
    rt, gate, job_id = _held_scan(tmp_path, make_config, runtime_factory, busy_retries=3)
    try:
        with RowLock(pg_url, job_id):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="busy"):
                rt.pause_scan(job_id)
            took = time.monotonic() - started
    finally:
        gate.release.set()
    assert took < 4 * (LEASE_TTL / 4) + 2.0, f"gave up after {took:.1f}s"
    assert rt.wait_for_job(job_id, timeout=30).status == "completed"


def _try(fn: Callable[[int], object], arg: int) -> object:
    try:
        return fn(arg)
    except scanguard.ScanguardError as exc:
        return exc


@pytest.mark.postgres
def test_a_migrating_session_may_idle_a_minute_inside_its_transaction_where_others_get_half_a_lease(
    pg_url: str,
) -> None:
    """Alembic loads its scripts inside the migration's transaction: on a loaded machine that idles past a
    short lease's half, and instances started together failed with SQLSTATE 25P03. Under the migration lock
    the idle bound is a minute; every other transaction keeps half a lease."""
    timeouts = SessionTimeouts.from_config(SafeguardConfig(operation_timeout=10, lease_ttl=LEASE_TTL))
    engine = create_engine(DatabaseConfig(url=pg_url), timeouts)
    try:
        with engine.connect() as conn, conn.begin():
            assert conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar() == "1s"
            migration_lock(conn)
            assert conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar() == "1min"
        with engine.connect() as conn, conn.begin():
            assert conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar() == "1s"
    finally:
        engine.dispose()
