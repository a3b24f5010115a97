"""The store's writer actor, and the StoreClient: the typed seam every caller uses (scanguard.store.seam).

Every write transaction of the process runs on the writer's thread, in its mailbox's order; reads run as
read-only transactions on the caller's own thread. The client is the one place that bounds a call by
`operation_timeout` and maps a timeout to OperationTimeout and a stopped writer to RuntimeStopped.
"""

from __future__ import annotations

import collections
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, cast

import pykka
import structlog

from scanguard.actors.events import Publish
from scanguard.actors.liveness import Answering
from scanguard.config import Config
from scanguard.errors import OperationTimeout, RuntimeStopped, ScanguardError
from scanguard.ownership import scanguard_version
from scanguard.records import (
    DeletedJob,
    Event,
    Job,
    Library,
    RemovedLibrary,
)
from scanguard.store import (
    batches,
    instances,
    job_transitions,
    libraries,
    maintenance,
    reads,
    watch,
    webhooks,
)
from scanguard.store.batches import BatchCommit
from scanguard.store.database import Database
from scanguard.store.reads import Read
from scanguard.store.seam import FaultHook, Later, Store
from scanguard.store.tx import Tx
from scanguard.webhooks.records import Lease, Pending, Position

if TYPE_CHECKING:
    from pykka._envelope import Envelope  # what pykka puts in an actor's inbox (its ActorInbox protocol)

log = structlog.get_logger("scanguard.store")
P = ParamSpec("P")
R = TypeVar("R")

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


@dataclass(frozen=True, slots=True)
class Write:
    """Run one write transaction: `fn(tx, *args, **kwargs)`, named `op` in logs and errors; a `bulk` one
    (a scan's batch) waits behind the writes of control operations already queued."""

    op: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    bulk: bool = False


class WriterInbox:
    """Owns the writer's mailbox: one queue with two lanes, each in order. A control operation's write
    (pause, resume, start, delete, the safeguards' writes) goes ahead of scans' queued batch commits, so
    an operator never waits behind twenty scans; a batch it overtakes is fenced by the token, as any batch
    that arrives after a pause is. Everything else (batches, pings, stop) keeps its order in the bulk lane.
    """

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._control: collections.deque[Envelope[Any]] = collections.deque()
        self._bulk: collections.deque[Envelope[Any]] = collections.deque()

    def put(self, envelope: Envelope[Any], /) -> None:
        message = envelope.message
        urgent = isinstance(message, Write) and not message.bulk
        with self._ready:
            (self._control if urgent else self._bulk).append(envelope)
            self._ready.notify()

    def get(self) -> Envelope[Any]:
        with self._ready:
            self._ready.wait_for(lambda: self._control or self._bulk)
            return (self._control or self._bulk).popleft()

    def empty(self) -> bool:
        with self._ready:
            return not (self._control or self._bulk)


@dataclass(frozen=True, slots=True)
class Ping:
    """Round-trip a trivial read through the writer's mailbox."""


@dataclass(frozen=True, slots=True)
class SetFaultHook:
    """Install (or, with None, remove) the writer's fault injector."""

    hook: FaultHook | None


class StoreActor(Answering):
    """Owns the order of the process's writes: each message is one write transaction, on this thread."""

    @staticmethod
    def _create_actor_inbox() -> WriterInbox:  # pykka's hook for an actor type's own mailbox
        return WriterInbox()

    def __init__(self, database: Database, bus: pykka.ActorRef[Any] | None = None) -> None:
        super().__init__()
        self.database = database
        self.bus = bus
        self.fault_hook: FaultHook | None = fault_hook_from_environment()
        self._failed: ScanguardError | None = None

    def on_start(self) -> None:
        try:
            self.database.migrate()
        except ScanguardError as exc:
            self._failed = exc  # kept, and raised by every call

    def on_receive(self, message: Any) -> Any:
        if self._failed is not None:
            raise self._failed
        match message:
            case Write(op, fn, args, kwargs):
                return self.database.write(op, fn, self._publish, self.fault_hook, *args, **kwargs)
            case Ping():
                started = time.perf_counter()
                self.database.read(reads.Ping())
                return time.perf_counter() - started
            case SetFaultHook(hook):
                self.fault_hook = hook
                return None
        return super().on_receive(message)

    def _publish(self, committed: tuple[Event, ...]) -> None:
        if self.bus is not None:
            self.bus.tell(Publish(committed))


class _Sent(Generic[R]):
    """A write sent ahead: its future, waited for within the operation timeout."""

    def __init__(self, client: StoreClient, op: str, future: pykka.Future[Any]) -> None:
        self._client = client
        self._op = op
        self._future = future

    def result(self, timeout: float | None = None) -> R:
        return cast(R, self._client.wait(self._op, self._future, timeout))

    def done(self, timeout: float) -> bool:
        try:
            self._future.get(timeout=timeout)  # pykka keeps the value (or error) for result()
        except pykka.Timeout:
            return False
        except Exception:  # noqa: BLE001 - finished, with an error that result() raises
            return True
        return True


class StoreClient(Store):
    """Owns the way to the store: writes to the writer's mailbox, reads on this thread, each bounded."""

    def __init__(self, config: Config, database: Database, writer: pykka.ActorRef[Any]) -> None:
        self.config = config
        self._db = database
        self._writer = writer
        self._timeout = config.safeguards.operation_timeout

    @property
    def database(self) -> Database:
        return self._db

    def wait(self, op: str, future: pykka.Future[Any], timeout: float | None = None) -> Any:
        """Wait for the writer's answer within the operation timeout (or `timeout`)."""
        limit = self._timeout if timeout is None else timeout
        try:
            return future.get(timeout=limit)
        except pykka.Timeout as exc:
            raise OperationTimeout(op, limit) from exc
        except pykka.ActorDeadError as exc:
            raise RuntimeStopped(f"{op}: the store is stopped") from exc

    def _ask(self, op: str, message: Any) -> pykka.Future[Any]:
        try:
            return self._writer.ask(message, block=False)
        except pykka.ActorDeadError as exc:
            raise RuntimeStopped(f"{op}: the store is stopped") from exc

    def _send(
        self, op: str, fn: Callable[Concatenate[Tx, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> Later[R]:
        return _Sent(self, op, self._ask(op, Write(op, fn, args, kwargs, bulk=True)))

    def _write(self, op: str, fn: Callable[Concatenate[Tx, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        return cast(R, self.wait(op, self._ask(op, Write(op, fn, args, kwargs))))

    def read(self, query: Read[R]) -> R:
        return self._db.read(query)

    def ping(self, timeout: float | None = None) -> float:
        return float(self.wait("ping", self._ask("ping", Ping()), timeout))

    def set_fault_hook(self, hook: FaultHook | None) -> None:
        self.wait("set_fault_hook", self._ask("set_fault_hook", SetFaultHook(hook)))

    # ---- libraries --------------------------------------------------------------------------

    def add_library(self, path: str, name: str, kind: str, watch: bool = True) -> Library:
        return self._write("add_library", libraries.add_library, path, name, kind, watch)

    def set_library_watch(self, library_id: int, enabled: bool) -> Library:
        return self._write("set_library_watch", watch.set_library_watch, library_id, enabled)

    # ---- watching ---------------------------------------------------------------------------

    def claim_watch(self, library_id: int, ttl: float) -> bool:
        return self._write("claim_watch", watch.claim_watch, library_id, ttl)

    def release_watch(self, library_id: int) -> None:
        self._write("release_watch", watch.release_watch, library_id)

    def set_watch_state(
        self,
        library_id: int,
        state: str,
        reason: str | None,
        message: str | None,
        event: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> bool:
        return self._write(
            "set_watch_state", watch.set_watch_state, library_id, state, reason, message, event, data or {}
        )

    def add_pending(self, library_id: int, paths: tuple[str, ...]) -> int:
        return self._write("add_pending", watch.add_pending, library_id, paths)

    def take_pending(self, library_id: int, paths: tuple[str, ...] | None, upto: datetime) -> int:
        return self._write("take_pending", watch.take_pending, library_id, paths, upto)

    def remove_library(self, library_id: int) -> RemovedLibrary:
        return self._write("remove_library", libraries.remove_library, library_id)

    # ---- jobs -------------------------------------------------------------------------------

    def create_job(
        self,
        library_id: int,
        retry_failed: bool = False,
        scope: tuple[str, ...] = (),
        trigger: str = "user",
    ) -> Job:
        return self._write("create_job", job_transitions.create_job, library_id, retry_failed, scope, trigger)

    def commit_batch(self, batch: BatchCommit) -> Later[Job]:
        return self._send("commit_batch", batches.commit_batch, batch)

    def finish_job(self, job_id: int, library_id: int, token: int, root_empty: bool = False) -> Job:
        scan = self.config.scan
        return self._write(
            "finish_job",
            job_transitions.finish_job,
            job_id,
            library_id,
            token,
            scan.empty_root_ratio,
            scan.empty_root_min_files,
            root_empty,
        )

    def pause_job(
        self,
        job_id: int,
        reason: str,
        error: str | None = None,
        token: int | None = None,
        library_id: int | None = None,
    ) -> Job:
        return self._write(
            "pause_job",
            job_transitions.pause_job,
            job_id,
            reason,
            error=error,
            token=token,
            library_id=library_id,
        )

    def resume_job(self, job_id: int, library_id: int | None = None) -> Job:
        return self._write("resume_job", job_transitions.resume_job, job_id, library_id)

    def delete_job(self, job_id: int, library_id: int | None = None) -> DeletedJob:
        return self._write("delete_job", job_transitions.delete_job, job_id, library_id)

    def fail_job(self, job_id: int, error: str, restarts: int) -> Job:
        return self._write("fail_job", job_transitions.fail_job, job_id, error, restarts)

    def record_restart(self, job_id: int, error: str, delay: float) -> Job:
        return self._write("record_restart", job_transitions.record_restart, job_id, error, delay)

    # ---- events and health ------------------------------------------------------------------

    def record_event(
        self, kind: str, library_id: int | None = None, job_id: int | None = None, **data: Any
    ) -> Event:
        return self._write("record_event", libraries.record_event, kind, library_id, job_id, data)

    # ---- maintenance ------------------------------------------------------------------------

    def remove_old_jobs(self, finished_before: datetime, limit: int) -> maintenance.Removed:
        return self._write("remove_old_jobs", maintenance.remove_old_jobs, finished_before, limit)

    def remove_old_events(self, before: datetime, limit: int) -> maintenance.Removed:
        return self._write("remove_old_events", maintenance.remove_old_events, before, limit)

    def remove_orphaned_files(self, limit: int) -> maintenance.Removed:
        return self._write("remove_orphaned_files", maintenance.remove_orphaned_files, limit)

    def remove_orphaned_jobs(self) -> maintenance.Removed:
        return self._write("remove_orphaned_jobs", maintenance.remove_orphaned_jobs)

    def release_stale_leases(self) -> maintenance.Removed:
        return self._write("release_stale_leases", maintenance.release_stale_leases)

    # ---- instances --------------------------------------------------------------------------

    def register_instance(self) -> None:
        """This process's row in `instances` (host, pid, version, started_at, heartbeat_at)."""
        self._write("register_instance", instances.register_instance, *self._identity())

    def beat_instance(self) -> None:
        """Renew this process's heartbeat (the watchdog does, every tick)."""
        self._write("beat_instance", instances.beat_instance, *self._identity())

    def remove_instance(self) -> None:
        self._write("remove_instance", instances.remove_instance)

    def remove_gone_instances(self, before: datetime) -> maintenance.Removed:
        removed = self._write("remove_gone_instances", instances.remove_gone_instances, before)
        return maintenance.Removed("gone_instances", removed)

    @staticmethod
    def _identity() -> tuple[str, int, str]:
        return socket.gethostname(), os.getpid(), scanguard_version()

    # ---- webhooks ---------------------------------------------------------------------------

    def ensure_webhook(self, name: str) -> None:
        self._write("ensure_webhook", webhooks.ensure_cursor, name)

    def claim_webhook(self, name: str) -> Lease | None:
        return self._write("claim_webhook", webhooks.claim, name)

    def release_webhook(self, name: str, token: int) -> None:
        self._write("release_webhook", webhooks.release, name, token)

    def webhook_delivered(self, name: str, token: int, position: Position) -> bool:
        return self._write("webhook_delivered", webhooks.delivered, name, token, position)

    def webhook_skipped(self, name: str, token: int, position: Position) -> bool:
        return self._write("webhook_skipped", webhooks.skipped, name, token, position)

    def webhook_attempt_failed(self, name: str, token: int, error: str) -> bool:
        return self._write("webhook_attempt_failed", webhooks.attempt_failed, name, token, error)

    def webhook_dead(self, pending: Pending, name: str, token: int, attempts: int, error: str) -> bool:
        return self._write("webhook_dead", webhooks.buried, pending, name, token, attempts, error)
