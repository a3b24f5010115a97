"""The StoreActor: the only owner of the database engine. One method call = one transaction."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import pykka
import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from scanguard.actors.events import Publish
from scanguard.config import Config
from scanguard.errors import LibraryBusy, OperationFailed, ScanguardError, StoreUnavailable
from scanguard.ownership import scanguard_version
from scanguard.records import (
    ACTIVE_STATUSES,
    DeletedJob,
    Event,
    Instance,
    Job,
    Library,
    MediaFile,
    Page,
    RemovedLibrary,
)
from scanguard.store import batches, catalog, faults, instances, jobs, maintenance, webhooks
from scanguard.store.batches import BatchCommit, Existing
from scanguard.store.engine import SessionTimeouts, create_engine, run_migrations, schema_at_head
from scanguard.store.tx import Tx
from scanguard.webhooks.records import Lease, Pending, Position, WebhookState

log = structlog.get_logger("scanguard.store")
P = ParamSpec("P")
R = TypeVar("R")

FaultHook = Callable[[str, str], None]
"""Called as hook(operation, stage) with stage 'before_commit' or 'after_commit'; raising simulates a fault."""
FAULT_HOOK_VARIABLE = "SCANGUARD_TEST_FAULT_HOOK"


def fault_hook_from_environment() -> FaultHook | None:
    """Tests of real processes: `SCANGUARD_TEST_FAULT_HOOK=package.module:function` installs that function
    as the writer's fault hook (to hold a process inside a transaction, say). Unset in production."""
    spec = os.environ.get(FAULT_HOOK_VARIABLE, "")
    if not spec:
        return None
    import importlib  # noqa: PLC0415 - only in tests

    module, _, name = spec.partition(":")
    hook: FaultHook = getattr(importlib.import_module(module), name)
    log.warning("store.fault_hook_installed", hook=spec)
    return hook


_BUSY = (
    "database is locked",  # SQLite
    "database is busy",
    "could not serialize",  # PostgreSQL serialization failure
    "lock timeout",  # PostgreSQL lock_timeout: "canceling statement due to lock timeout"
    "deadlock detected",
)


def _busy(exc: BaseException) -> bool:
    """A wait for another writer's lock that gave up: worth retrying with backoff."""
    text = str(exc).lower()
    return any(marker in text for marker in _BUSY)


class StoreActor(pykka.ThreadingActor):
    """Owns an engine and its asyncio loop on the actor's thread; each call runs one transaction.

    One instance writes (every write transaction of the process goes through its mailbox, in order);
    a second, `readonly=True`, serves the admin API's reads so they never queue behind batch commits.
    """

    def __init__(
        self, config: Config, instance: str, bus: pykka.ActorRef[Any] | None = None, *, readonly: bool = False
    ) -> None:
        super().__init__()
        self.config = config
        self.instance = instance
        self.bus = bus
        self.readonly = readonly
        self.fault_hook: FaultHook | None = None if readonly else fault_hook_from_environment()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: AsyncEngine | None = None
        self._failed: ScanguardError | None = None
        self.dialect = ""

    def on_start(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._engine = create_engine(
                self.config.database, SessionTimeouts.from_config(self.config.safeguards)
            )
            self.dialect = self._engine.dialect.name
            if not self.readonly:
                self._retrying("migrate", self._migrate)
        except ScanguardError as exc:
            self._failed = exc
        except Exception as exc:  # noqa: BLE001 - the actor boundary: kept and raised by every call
            self._failed = self._translate("migrate", "migrate", exc)

    def on_stop(self) -> None:
        if self._loop is not None:
            if self._engine is not None:
                self._loop.run_until_complete(self._engine.dispose())
            self._loop.close()

    async def _migrate(self) -> None:
        """Upgrade the schema; a database already at head is recognised in a read transaction, so a
        process starting beside another one's long write never waits for the write lock. Otherwise the
        upgrade runs under the migration lock (an exclusive transaction on SQLite, an advisory lock on
        PostgreSQL): instances started together on an empty database all come up."""
        assert self._engine is not None
        async with self._engine.connect() as raw:
            conn = await raw.execution_options(scanguard_readonly=True)
            async with conn.begin():
                if await conn.run_sync(schema_at_head):
                    return
        async with self._engine.connect() as raw:
            conn = await raw.execution_options(scanguard_exclusive=True)
            async with conn.begin():
                await conn.run_sync(run_migrations)

    # ---- the transaction runner -------------------------------------------------------------

    def _retrying(self, op: str, make: Callable[[], Awaitable[R]]) -> R:
        """Run one transaction; a busy database is retried with backoff (the seed's 'retry with backoff')."""
        assert self._loop is not None
        cfg = self.config.database
        attempt = 0
        while True:
            try:
                return self._loop.run_until_complete(make())
            except sa_exc.DBAPIError as exc:
                if not _busy(exc) or attempt >= cfg.busy_retries:
                    raise
                delay = min(2.0, 0.02 * 2**attempt) * (0.5 + random.random())
                attempt += 1
                log.warning("store.busy_retry", operation=op, attempt=attempt, delay=round(delay, 3))
                time.sleep(delay)

    def _translate(self, op: str, step: str, exc: Exception) -> ScanguardError:
        """Driver errors become scanguard errors here, and only here, naming the step that failed.

        A store that cannot serve (full disk, I/O error, lost connection: see store/faults.py) is
        StoreUnavailable, carrying the driver's own words; anything else is a failure of the operation.
        """
        rolled_back = step != "after_commit"
        log.error("store.operation_failed", operation=op, step=step, error=f"{type(exc).__name__}: {exc}")
        if isinstance(exc, sa_exc.DBAPIError) and _busy(exc):
            # SQLite's busy error, or PostgreSQL's lock_timeout, still there after every retry
            return StoreUnavailable(
                f"{op}: the database stayed busy at step '{step}'", operation=op, step=step
            )
        if faults.store_unavailable(exc):
            return StoreUnavailable(
                f"{op}: the database is unavailable at step '{step}': {faults.driver_words(exc)}",
                operation=op,
                step=step,
                rolled_back=rolled_back,
            )
        return OperationFailed(op, step, exc, rolled_back=rolled_back)

    def _tx(
        self,
        op: str,
        fn: Callable[Concatenate[Tx, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        if self._failed is not None:
            raise self._failed
        if self.readonly:
            raise OperationFailed(op, "preflight", "this store instance only reads")
        assert self._engine is not None
        engine = self._engine
        step = "connect"
        committed: list[Event] = []

        async def run() -> R:
            nonlocal step
            step = "connect"
            committed.clear()
            async with engine.connect() as conn:
                async with conn.begin():
                    step = "transaction"
                    tx = Tx(conn, self.instance, self.config.safeguards.lease_ttl)
                    result = await fn(tx, *args, **kwargs)
                    step = "before_commit"
                    if self.fault_hook is not None:
                        self.fault_hook(op, "before_commit")
                    step = "commit"
                step = "after_commit"
                committed.extend(tx.events)
                if self.fault_hook is not None:
                    self.fault_hook(op, "after_commit")
                return result

        try:
            return self._retrying(op, run)
        except ScanguardError:
            raise
        except sa_exc.IntegrityError as exc:
            raise self._integrity(op, exc, args) from exc
        except Exception as exc:
            raise self._translate(op, step, exc) from exc
        finally:
            # the events table is the outbox: what committed is delivered, even if a later step failed
            if committed and self.bus is not None:
                self.bus.tell(Publish(tuple(committed)))

    def _read(
        self, op: str, fn: Callable[Concatenate[Tx, P], Awaitable[R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        if self._failed is not None:
            raise self._failed
        assert self._engine is not None
        engine = self._engine

        async def run() -> R:
            async with engine.connect() as raw:
                conn = await raw.execution_options(scanguard_readonly=True)
                async with conn.begin():
                    return await fn(
                        Tx(conn, self.instance, self.config.safeguards.lease_ttl), *args, **kwargs
                    )

        try:
            return self._retrying(op, run)
        except ScanguardError:
            raise
        except Exception as exc:
            raise self._translate(op, "read", exc) from exc

    def _integrity(self, op: str, exc: sa_exc.IntegrityError, args: tuple[Any, ...]) -> ScanguardError:
        """A constraint caught a race the pre-flight could not see: name what is in the way."""
        if op in ("create_job", "resume_job") and args:
            library_id = (
                int(args[0])
                if op == "create_job"
                else self._read("get_job", catalog.get_job, int(args[0])).library_id
            )
            active = self._read(
                "active_jobs",
                catalog.list_jobs,
                library_id=library_id,
                statuses=ACTIVE_STATUSES,
            )
            return LibraryBusy(library_id, active.items[0].id if active.items else None)
        return OperationFailed(op, "commit", exc.orig or exc)

    # ---- libraries --------------------------------------------------------------------------

    def add_library(self, path: str, name: str, kind: str) -> Library:
        return self._tx("add_library", catalog.add_library, path, name, kind)

    def get_library(self, library_id: int) -> Library:
        return self._read("get_library", catalog.get_library, library_id)

    def list_libraries(self) -> tuple[Library, ...]:
        return self._read("list_libraries", catalog.list_libraries)

    def remove_library(self, library_id: int) -> RemovedLibrary:
        return self._tx("remove_library", catalog.remove_library, library_id)

    def list_files(
        self,
        library_id: int,
        limit: int = 100,
        offset: int = 0,
        include_missing: bool = False,
        errors: bool = False,
    ) -> Page[MediaFile]:
        return self._read(
            "list_files",
            catalog.list_files,
            library_id,
            limit=limit,
            offset=offset,
            include_missing=include_missing,
            errors=errors,
        )

    # ---- jobs -------------------------------------------------------------------------------

    def create_job(self, library_id: int, retry_failed: bool = False) -> Job:
        return self._tx("create_job", jobs.create_job, library_id, retry_failed)

    def get_job(self, job_id: int) -> Job:
        return self._read("get_job", catalog.get_job, job_id)

    def list_jobs(
        self, statuses: tuple[str, ...] = (), library_id: int | None = None, limit: int = 100, offset: int = 0
    ) -> Page[Job]:
        return self._read(
            "list_jobs",
            catalog.list_jobs,
            statuses=statuses,
            library_id=library_id,
            limit=limit,
            offset=offset,
        )

    def job_counts(self) -> dict[str, int]:
        return self._read("job_counts", catalog.job_counts)

    def active_jobs(self) -> tuple[Job, ...]:
        return self._read("active_jobs", catalog.active_jobs)

    def running_with_leases(self) -> tuple[tuple[Job, Any], ...]:
        return self._read("running_with_leases", catalog.running_with_leases)

    def existing_files(
        self, library_id: int, after: str | None, upto: str | None, work: bool = False
    ) -> dict[str, Existing]:
        return self._read("existing_files", batches.existing_files, library_id, after, upto, work=work)

    def commit_batch(self, batch: BatchCommit) -> Job:
        return self._tx("commit_batch", batches.commit_batch, batch)

    def finish_job(self, job_id: int, library_id: int, token: int) -> Job:
        scan = self.config.scan
        return self._tx(
            "finish_job",
            jobs.finish_job,
            job_id,
            library_id,
            token,
            scan.empty_root_ratio,
            scan.empty_root_min_files,
        )

    def pause_job(
        self,
        job_id: int,
        reason: str,
        error: str | None = None,
        token: int | None = None,
        library_id: int | None = None,
    ) -> Job:
        return self._tx(
            "pause_job", jobs.pause_job, job_id, reason, error=error, token=token, library_id=library_id
        )

    def resume_job(self, job_id: int, library_id: int | None = None) -> Job:
        return self._tx("resume_job", jobs.resume_job, job_id, library_id)

    def delete_job(self, job_id: int, library_id: int | None = None) -> DeletedJob:
        return self._tx("delete_job", jobs.delete_job, job_id, library_id)

    def fail_job(self, job_id: int, error: str, restarts: int) -> Job:
        return self._tx("fail_job", jobs.fail_job, job_id, error, restarts)

    def record_restart(self, job_id: int, error: str, delay: float) -> Job:
        return self._tx("record_restart", jobs.record_restart, job_id, error, delay)

    # ---- events and health ------------------------------------------------------------------

    def record_event(
        self, kind: str, library_id: int | None = None, job_id: int | None = None, **data: Any
    ) -> Event:
        return self._tx("record_event", catalog.record_event, kind, library_id, job_id, data)

    def list_events(
        self,
        job_id: int | None = None,
        library_id: int | None = None,
        kind: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest_first: bool = False,
    ) -> tuple[Event, ...]:
        return self._read(
            "list_events",
            catalog.list_events,
            job_id=job_id,
            library_id=library_id,
            kind=kind,
            after_id=after_id,
            limit=limit,
            newest_first=newest_first,
        )

    def ping(self) -> float:
        """Round-trip a trivial query; returns its latency in seconds."""
        started = time.perf_counter()
        self._read("ping", catalog.ping)
        return time.perf_counter() - started

    # ---- maintenance ------------------------------------------------------------------------

    def remove_old_jobs(self, finished_before: datetime, limit: int) -> maintenance.Removed:
        return self._tx("remove_old_jobs", maintenance.remove_old_jobs, finished_before, limit)

    def remove_old_events(self, before: datetime, limit: int) -> maintenance.Removed:
        return self._tx("remove_old_events", maintenance.remove_old_events, before, limit)

    def remove_orphaned_files(self, limit: int) -> maintenance.Removed:
        return self._tx("remove_orphaned_files", maintenance.remove_orphaned_files, limit)

    def remove_orphaned_jobs(self) -> maintenance.Removed:
        return self._tx("remove_orphaned_jobs", maintenance.remove_orphaned_jobs)

    def release_stale_leases(self) -> maintenance.Removed:
        return self._tx("release_stale_leases", maintenance.release_stale_leases)

    def invariant_violations(self) -> dict[str, list[int]]:
        return self._read("invariant_violations", maintenance.invariant_violations)

    # ---- instances --------------------------------------------------------------------------

    def register_instance(self) -> None:
        """This process's row in `instances` (host, pid, version, started_at, heartbeat_at)."""
        self._tx("register_instance", instances.register_instance, *self._identity())

    def beat_instance(self) -> None:
        """Renew this process's heartbeat (the watchdog does, every tick)."""
        self._tx("beat_instance", instances.beat_instance, *self._identity())

    def remove_instance(self) -> None:
        self._tx("remove_instance", instances.remove_instance)

    def list_instances(self) -> tuple[Instance, ...]:
        return self._read("list_instances", instances.list_instances)

    def remove_gone_instances(self, before: datetime) -> maintenance.Removed:
        removed = self._tx("remove_gone_instances", instances.remove_gone_instances, before)
        return maintenance.Removed("gone_instances", removed)

    def _identity(self) -> tuple[str, int, str]:
        return socket.gethostname(), os.getpid(), scanguard_version()

    # ---- webhooks ---------------------------------------------------------------------------

    def ensure_webhook(self, name: str) -> None:
        self._tx("ensure_webhook", webhooks.ensure_cursor, name)

    def claim_webhook(self, name: str) -> Lease | None:
        return self._tx("claim_webhook", webhooks.claim, name)

    def release_webhook(self, name: str, token: int) -> None:
        self._tx("release_webhook", webhooks.release, name, token)

    def webhook_delivered(self, name: str, token: int, position: Position) -> bool:
        return self._tx("webhook_delivered", webhooks.delivered, name, token, position)

    def webhook_skipped(self, name: str, token: int, position: Position) -> bool:
        return self._tx("webhook_skipped", webhooks.skipped, name, token, position)

    def webhook_attempt_failed(self, name: str, token: int, error: str) -> bool:
        return self._tx("webhook_attempt_failed", webhooks.attempt_failed, name, token, error)

    def webhook_dead(self, pending: Pending, name: str, token: int, attempts: int, error: str) -> bool:
        return self._tx("webhook_dead", webhooks.buried, pending, name, token, attempts, error)

    def webhook_pending(self, position: Position, kinds: tuple[str, ...], limit: int) -> tuple[Pending, ...]:
        return self._read("webhook_pending", webhooks.pending_events, position, kinds, limit)

    def webhook_states(self, hooks: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[WebhookState, ...]:
        return self._read("webhook_states", webhooks.states, hooks)

    def set_fault_hook(self, hook: FaultHook | None) -> None:
        """Install a fault injector (tests); None removes it."""
        self.fault_hook = hook
