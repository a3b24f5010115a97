"""Busy or locked is told by the driver's code (SQLite result code, PostgreSQL SQLSTATE), never by its text.

Each error here is a real one from the driver; the text-matching rule it replaces got the second half of
each list wrong (a lock error worded otherwise, or an unrelated error that says "locked")."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import create_async_engine
from structlog.testing import capture_logs

import scanguard
from scanguard.errors import StoreUnavailable
from scanguard.store.database import Database
from scanguard.store.engine import database_url
from scanguard.store.faults import busy
from scanguard.store.reads import Read

pytestmark = pytest.mark.timeout(60)


def _raised(action: Callable[[], object]) -> sa_exc.DBAPIError:
    with pytest.raises(sa_exc.DBAPIError) as caught:
        action()
    return caught.value


# ---- SQLite -------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    path = tmp_path / "busy.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t (id, v) VALUES (?, 'x')", [(1,), (2,), (3,)])
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    yield engine
    engine.dispose()


def test_sqlite_busy_from_a_second_writer_is_busy(sqlite_engine: sa.Engine) -> None:
    holder = sqlite3.connect(sqlite_engine.url.database or "", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, held
        with sqlite_engine.connect() as conn:
            error = _raised(lambda: conn.exec_driver_sql("UPDATE t SET v = 'y' WHERE id = 1"))
    finally:
        holder.close()
    assert error.orig.sqlite_errorname.startswith("SQLITE_BUSY"), error.orig  # type: ignore[union-attr]
    assert busy(error)


def test_sqlite_locked_table_is_busy_although_its_words_differ(sqlite_engine: sa.Engine) -> None:
    with sqlite_engine.connect() as conn:
        reading = conn.exec_driver_sql("SELECT id FROM t")
        reading.fetchone()  # the statement still reads the table
        error = _raised(lambda: conn.exec_driver_sql("DROP TABLE t"))
        reading.close()
    assert error.orig.sqlite_errorname.startswith("SQLITE_LOCKED"), error.orig  # type: ignore[union-attr]
    assert "database is locked" not in str(error.orig)  # "database table is locked"
    assert busy(error)


def test_a_sqlite_trigger_that_says_database_is_locked_is_not_busy(sqlite_engine: sa.Engine) -> None:
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE UPDATE ON t BEGIN SELECT RAISE(ABORT, 'database is locked'); END"
        )
    with sqlite_engine.connect() as conn:
        error = _raised(lambda: conn.exec_driver_sql("UPDATE t SET v = 'y' WHERE id = 1"))
    assert "database is locked" in str(error.orig)
    assert not busy(error), "a constraint of the application is not a lock wait: retrying cannot help"


# ---- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url(pg_url))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1, 'x'), (2, 'x')")
    yield engine
    engine.dispose()


@pytest.fixture
def row_held(pg_engine: sa.Engine) -> Iterator[None]:
    """Row 1 of t locked by another transaction for the test's duration."""
    with pg_engine.connect() as holder, holder.begin():
        holder.exec_driver_sql("SELECT * FROM t WHERE id = 1 FOR UPDATE")
        yield


@pytest.mark.postgres
def test_postgresql_lock_timeout_is_busy(pg_engine: sa.Engine, row_held: None) -> None:
    with pg_engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("SET LOCAL lock_timeout = '50ms'")
        error = _raised(lambda: conn.exec_driver_sql("UPDATE t SET v = 'y' WHERE id = 1"))
    assert error.orig.sqlstate == "55P03", error.orig  # type: ignore[union-attr]
    assert busy(error)


@pytest.mark.postgres
def test_postgresql_nowait_lock_not_available_is_busy_although_it_never_says_timeout(
    pg_engine: sa.Engine, row_held: None
) -> None:
    with pg_engine.connect() as conn, conn.begin():
        error = _raised(lambda: conn.exec_driver_sql("SELECT * FROM t WHERE id = 1 FOR UPDATE NOWAIT"))
    assert error.orig.sqlstate == "55P03", error.orig  # type: ignore[union-attr]
    assert "lock timeout" not in str(error.orig)  # "could not obtain lock on row in relation"
    assert busy(error)


@pytest.mark.postgres
def test_postgresql_lock_not_available_through_asyncpg_is_busy(pg_url: str, row_held: None) -> None:
    async def attempt() -> sa_exc.DBAPIError:
        engine = create_async_engine(database_url(pg_url, asynchronous=True))
        try:
            async with engine.connect() as conn:
                try:
                    await conn.exec_driver_sql("SELECT * FROM t WHERE id = 1 FOR UPDATE NOWAIT")
                except sa_exc.DBAPIError as exc:
                    return exc
            raise AssertionError("the NOWAIT lock was granted")
        finally:
            await engine.dispose()

    assert busy(asyncio.run(attempt()))


@pytest.mark.postgres
def test_postgresql_serialization_failure_is_busy(pg_engine: sa.Engine) -> None:
    with pg_engine.connect() as first, pg_engine.connect() as second:
        first.begin()
        first.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        first.exec_driver_sql("SELECT v FROM t WHERE id = 1").all()  # its snapshot is taken
        with second.begin():
            second.exec_driver_sql("UPDATE t SET v = 'second' WHERE id = 1")
        error = _raised(lambda: first.exec_driver_sql("UPDATE t SET v = 'first' WHERE id = 1"))
        first.rollback()
    assert error.orig.sqlstate == "40001", error.orig  # type: ignore[union-attr]
    assert busy(error)


@pytest.mark.postgres
def test_postgresql_deadlock_is_busy(pg_engine: sa.Engine) -> None:
    with pg_engine.connect() as first, pg_engine.connect() as second:
        first.begin()
        second.begin()
        second.exec_driver_sql("SET LOCAL deadlock_timeout = '50ms'")
        first.exec_driver_sql("UPDATE t SET v = 'a' WHERE id = 1")
        second.exec_driver_sql("UPDATE t SET v = 'b' WHERE id = 2")
        errors: list[sa_exc.DBAPIError] = []

        def cross() -> None:
            try:
                first.exec_driver_sql("UPDATE t SET v = 'a' WHERE id = 2")  # waits for `second`
            except sa_exc.DBAPIError as exc:
                errors.append(exc)

        waiter = threading.Thread(target=cross)
        waiter.start()
        try:  # `second` checks for the deadlock first (50 ms against the default 1 s) and is the victim
            errors.append(_raised(lambda: second.exec_driver_sql("UPDATE t SET v = 'b' WHERE id = 1")))
        finally:
            second.rollback()
            waiter.join(10)
            first.rollback()
    assert len(errors) == 1, errors
    assert errors[0].orig.sqlstate == "40P01", errors[0].orig  # type: ignore[union-attr]
    assert busy(errors[0])


@pytest.mark.postgres
def test_a_postgresql_error_raised_with_lock_words_is_not_busy(pg_engine: sa.Engine) -> None:
    with pg_engine.connect() as conn:
        raising = "DO $$ BEGIN RAISE EXCEPTION 'could not serialize: deadlock detected, lock timeout'; END $$"
        error = _raised(lambda: conn.exec_driver_sql(raising))
    assert error.orig.sqlstate == "P0001", error.orig  # type: ignore[union-attr]
    assert not busy(error)


# ---- the store's retry of a busy database --------------------------------------------------------


def test_a_write_busy_beyond_its_retries_is_tried_busy_retries_more_times_then_store_unavailable(
    tmp_path: Path, make_config: Callable[..., scanguard.Config]
) -> None:
    path = tmp_path / "retried.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    config = make_config(database={"url": f"sqlite:///{path}", "busy_retries": 4, "busy_timeout": 0})
    database = Database(config, "me")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock throughout
    try:
        with capture_logs() as logs, pytest.raises(StoreUnavailable, match="stayed busy"):
            database.write(
                "touch", lambda tx: tx.conn.exec_driver_sql("INSERT INTO t (v) VALUES ('x')"), print, None
            )
    finally:
        holder.close()
        database.dispose()
    retries = [entry for entry in logs if entry["event"] == "store.busy_retry"]
    assert [r["attempt"] for r in retries] == [1, 2, 3, 4]
    for n, retry in enumerate(retries):  # BUSY_DATABASE: 20 ms doubling, ±50%, at most 2 s
        assert min(0.02 * 2**n * 0.5, 2.0) - 1e-3 <= retry["delay"] <= min(0.02 * 2**n * 1.5, 2.0) + 1e-3


@pytest.mark.postgres
def test_an_event_loop_read_behind_a_held_lock_is_retried_by_the_same_rule_then_store_unavailable(
    pg_url: str, pg_engine: sa.Engine, make_config: Callable[..., scanguard.Config]
) -> None:
    """The admin API's reads (asyncpg, on the loop) give up each lock wait after lock_timeout, are retried
    busy_retries times, and then answer store_unavailable instead of hanging."""
    # lock_timeout = min(operation_timeout, lease_ttl) / 4 = 0.1 s
    config = make_config(safeguards={"operation_timeout": 0.4}, database={"busy_retries": 2})
    database = Database(config, "me")

    @dataclass(frozen=True, slots=True)
    class ReadT(Read[list[Any]]):
        def run(self, tx: Any) -> list[Any]:
            return list(tx.conn.exec_driver_sql("SELECT * FROM t").all())

    async def read() -> None:
        database.open_async()
        try:
            await database.aread(ReadT())
        finally:
            await database.close_async()

    try:
        with pg_engine.connect() as holder, holder.begin():
            holder.exec_driver_sql("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            with capture_logs() as logs, pytest.raises(StoreUnavailable, match="stayed busy"):
                asyncio.run(read())
    finally:
        database.dispose()
    assert [e["attempt"] for e in logs if e["event"] == "store.busy_retry"] == [1, 2]
