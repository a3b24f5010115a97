"""The Database: one URL's engines and the one way a transaction runs on them (retries, translation, outbox).

Statements run on the calling thread through SQLAlchemy's synchronous engine (the standard sqlite3
driver, psycopg): the store's writer runs every write transaction on its own thread, and readers run
read-only transactions on theirs, with no hand-off per statement. Where an event loop already runs (the
admin API), `aread` runs the same query functions on the async engine (asyncpg) on that loop, or on
reader threads for SQLite (see `open_async` for what was measured).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy import exc as sa_exc
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from scanguard.backoff import BUSY_DATABASE
from scanguard.config import Config
from scanguard.errors import LibraryBusy, OperationFailed, RuntimeStopped, ScanguardError, StoreUnavailable
from scanguard.records import ACTIVE_STATUSES, Event
from scanguard.store import faults
from scanguard.store.engine import (
    SessionTimeouts,
    create_async_engine_for_loop,
    create_engine,
    run_migrations,
    schema_at_head,
)
from scanguard.store.reads import GetJob, ListJobs, Read
from scanguard.store.seam import FaultHook
from scanguard.store.tx import Tx

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger("scanguard.store")
READER_THREADS = 16
P = ParamSpec("P")
R = TypeVar("R")


def translate(op: str, step: str, exc: Exception) -> ScanguardError:
    """Driver errors become scanguard errors here, and only here, naming the step that failed.

    A store that cannot serve (full disk, I/O error, lost connection: see store/faults.py) is
    StoreUnavailable; anything else is a failure of the operation. The error says what failed in fixed
    words (the driver's code and its meaning); the driver's own text, which may hold the statement, its
    parameters and the server's paths, goes to the log only.
    """
    rolled_back = step != "after_commit"
    log.error("store.operation_failed", operation=op, step=step, error=f"{type(exc).__name__}: {exc}")
    if faults.busy(exc):
        # SQLite's busy error, or PostgreSQL's lock_timeout, still there after every retry
        return StoreUnavailable(f"{op}: the database stayed busy at step '{step}'", operation=op, step=step)
    if faults.store_unavailable(exc):
        return StoreUnavailable(
            f"{op}: the database is unavailable at step '{step}': {faults.described(exc)}",
            operation=op,
            step=step,
            rolled_back=rolled_back,
        )
    return OperationFailed(op, step, faults.described(exc), rolled_back=rolled_back)


class Database:
    """Owns the engines of one database and runs each transaction on them: one call, one transaction."""

    def __init__(self, config: Config, instance: str) -> None:
        self.config = config
        self.instance = instance
        self._timeouts = SessionTimeouts.from_config(config.safeguards)
        self.engine = create_engine(config.database, self._timeouts)
        self.dialect = self.engine.dialect.name
        # an in-memory SQLite database is one connection: its transactions take turns
        memory = self.dialect == "sqlite" and self.engine.url.database in (None, "", ":memory:")
        self._serial: threading.RLock | None = threading.RLock() if memory else None
        # the async engine and the loop it belongs to (its connections cannot move to another loop)
        self._async: tuple[AsyncEngine, asyncio.AbstractEventLoop] | None = None
        # an event loop's reads on SQLite (and on an in-memory database): a few threads of their own
        self._readers = concurrent.futures.ThreadPoolExecutor(
            READER_THREADS, thread_name_prefix="scanguard-read"
        )

    def dispose(self) -> None:
        self._readers.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()

    @property
    def async_engine(self) -> AsyncEngine | None:
        """The async engine an event loop reads through, once `open_async` gave it one."""
        return None if self._async is None else self._async[0]

    def open_async(self) -> None:
        """On PostgreSQL, give the running event loop the async engine (asyncpg) for its reads (`aread`);
        the loop's owner closes it with `close_async` before the loop ends (the admin app does both).

        On SQLite the loop's reads run on reader threads instead: aiosqlite would hand every statement to a
        thread of its own and back through the loop, which under load costs more than the read (measured
        with bench/http_load.py, 200 clients: 411 requests/s through aiosqlite, 715-750 on reader threads).
        """
        if self.dialect == "postgresql" and self._async is None:
            engine = create_async_engine_for_loop(self.config.database, self._timeouts)
            self._async = (engine, asyncio.get_running_loop())

    async def close_async(self) -> None:
        """Close the async engine's connections, on the loop that used them."""
        if self._async is not None and self._async[1] is asyncio.get_running_loop():
            (engine, _loop), self._async = self._async, None
            await engine.dispose()

    # ---- schema -------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Upgrade the schema; a database already at head is recognised in a read transaction, so a
        process starting beside another one's long write never waits for the write lock. Otherwise the
        upgrade runs under the migration lock (an exclusive transaction on SQLite, an advisory lock on
        PostgreSQL): instances started together on an empty database all come up."""

        def attempt() -> None:
            with self._connection(scanguard_readonly=True) as conn, conn.begin():
                if schema_at_head(conn):
                    return
            with self._connection(scanguard_exclusive=True) as conn, conn.begin():
                run_migrations(conn)

        try:
            self._retrying("migrate", attempt)
        except ScanguardError:
            raise
        except Exception as exc:
            raise translate("migrate", "migrate", exc) from exc

    # ---- transactions -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self, **options: bool) -> Iterator[sa.Connection]:
        with self._serial or contextlib.nullcontext(), self.engine.connect() as raw:
            yield raw.execution_options(**options) if options else raw

    def _retrying(self, op: str, attempt: Callable[[], R]) -> R:
        """A busy database is retried with backoff (the seed's 'retry with backoff')."""
        for attempt_state in Retrying(**self._busy_policy(op)):
            with attempt_state:
                return attempt()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _busy_policy(self, op: str) -> dict[str, Any]:
        """The one rule for retrying a busy database, for the threads' transactions and the event loop's
        reads: busy errors only (store/faults.py), at most busy_retries more times, BUSY_DATABASE's
        backoff, each retry logged; then the last error is raised as it was."""

        def logged(state: RetryCallState) -> None:
            delay = state.upcoming_sleep
            log.warning("store.busy_retry", operation=op, attempt=state.attempt_number, delay=round(delay, 3))

        return {
            "retry": retry_if_exception(faults.busy),
            "stop": stop_after_attempt(self.config.database.busy_retries + 1),
            "wait": BUSY_DATABASE,
            "before_sleep": logged,
            "reraise": True,
        }

    def _tx(self, conn: sa.Connection) -> Tx:
        return Tx(conn, self.instance, self.config.safeguards.lease_ttl)

    def write(
        self,
        op: str,
        fn: Callable[Concatenate[Tx, P], R],
        publish: Callable[[tuple[Event, ...]], None],
        fault_hook: FaultHook | None,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """One write transaction on this thread; the events it wrote are published once it committed."""
        step = "connect"
        committed: list[Event] = []

        def attempt() -> R:
            nonlocal step
            step = "connect"
            committed.clear()
            with self._connection() as conn:
                with conn.begin():
                    step = "transaction"
                    tx = self._tx(conn)
                    result = fn(tx, *args, **kwargs)
                    step = "before_commit"
                    if fault_hook is not None:
                        fault_hook(op, "before_commit")
                    step = "commit"
                step = "after_commit"
                committed.extend(tx.events)
                if fault_hook is not None:
                    fault_hook(op, "after_commit")
                return result

        try:
            return self._retrying(op, attempt)
        except ScanguardError:
            raise
        except sa_exc.IntegrityError as exc:
            raise self._integrity(op, exc, args) from exc
        except Exception as exc:
            raise translate(op, step, exc) from exc
        finally:
            # the events table is the outbox: what committed is delivered, even if a later step failed
            if committed:
                publish(tuple(committed))

    def read(self, query: Read[R]) -> R:
        """One read-only transaction on the calling thread (never behind the writer's queue)."""
        op = query.op

        def attempt() -> R:
            with self._connection(scanguard_readonly=True) as conn, conn.begin():
                return query.run(self._tx(conn))

        try:
            return self._retrying(op, attempt)
        except ScanguardError:
            raise
        except Exception as exc:
            raise translate(op, "read", exc) from exc

    async def aread(self, query: Read[R]) -> R:
        """`read` for the running event loop, never blocking it: on the loop given the async engine by
        `open_async` (PostgreSQL), the same declared read run by SQLAlchemy's `run_sync` on asyncpg;
        anywhere else (SQLite, a host's own loop), `read` on one of the reader threads."""
        op = query.op
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[1] is not loop:
            call = functools.partial(self.read, query)
            try:
                future = loop.run_in_executor(self._readers, call)
            except RuntimeError as exc:  # the readers were shut down with the runtime
                raise RuntimeStopped(f"{op}: the database is closed") from exc
            return await future
        engine = self._async[0]
        try:
            async for attempt_state in AsyncRetrying(**self._busy_policy(op)):
                with attempt_state:
                    async with engine.connect() as raw:
                        conn = await raw.execution_options(scanguard_readonly=True)
                        async with conn.begin():
                            return await conn.run_sync(lambda sync: query.run(self._tx(sync)))
        except ScanguardError:
            raise
        except Exception as exc:
            raise translate(op, "read", exc) from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _integrity(self, op: str, exc: sa_exc.IntegrityError, args: tuple[Any, ...]) -> ScanguardError:
        """A constraint caught a race the pre-flight could not see: name what is in the way."""
        if op in ("create_job", "resume_job") and args:
            library_id = int(args[0]) if op == "create_job" else self.read(GetJob(int(args[0]))).library_id
            active = self.read(ListJobs(ACTIVE_STATUSES, library_id))
            return LibraryBusy(library_id, active.items[0].id if active.items else None)
        log.error("store.operation_failed", operation=op, step="commit", error=f"{type(exc).__name__}: {exc}")
        return OperationFailed(op, "commit", faults.described(exc))
