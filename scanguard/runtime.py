"""The Runtime: host code's handle on one process's actors — blocking calls and their awaitable twins."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

import pykka
import structlog

from scanguard.actors.cleanup import CleanupScheduler, EmergencyCleanup, RunCleanup
from scanguard.actors.events import EventBus, Subscribe, Unsubscribe
from scanguard.actors.health import Check, HealthChecker
from scanguard.actors.library import LibraryActor
from scanguard.actors.store import StoreActor, StoreClient
from scanguard.actors.supervisor import LiveDetail, Supervised, Supervisor
from scanguard.actors.ticking import Collaborators, Stats
from scanguard.actors.validator import StateValidator, Validate, ValidationReport
from scanguard.actors.watchdog import Sweep, SweepReport, Watchdog
from scanguard.actors.workers import WorkerPoolActor
from scanguard.aio import AsyncRuntime
from scanguard.config import Config, load_config
from scanguard.control import PauseScan, RemoveLibrary, Request, job_request, start_request
from scanguard.errors import BadRequest, OperationTimeout, RuntimeStopped, ScanguardError
from scanguard.logs import configure_logging
from scanguard.metrics import Metrics
from scanguard.ownership import instance_id
from scanguard.processing.context import Processor
from scanguard.processing.pool import FilePool
from scanguard.processing.registry import resolve
from scanguard.processing.scanwork import FileWork
from scanguard.records import DeletedJob, Event, EventQuery, Job, Library, MediaFile, Page, RemovedLibrary
from scanguard.remote import RemoteEvents
from scanguard.scanning import FileSystem
from scanguard.status import StatusParts, status_report
from scanguard.store.database import Database
from scanguard.store.engine import is_postgresql
from scanguard.store.reads import (
    ActiveJobs,
    GetJob,
    GetLibrary,
    JobCounts,
    JobWithLibrary,
    LibraryForStart,
    ListEvents,
    ListFiles,
    ListInstances,
    ListJobs,
    ListLibraries,
    WebhookStates,
)
from scanguard.store.seam import Store
from scanguard.validation import (
    check_id,
    event_family,
    job_statuses,
    library_kind,
    library_name,
    library_path,
)

if TYPE_CHECKING:
    from scanguard.actors.webhooks import Deliveries
    from scanguard.records import Instance
    from scanguard.store.notify import EventListener

log = structlog.get_logger("scanguard.runtime")


class Runtime:
    """Owns one process's actor system: starts it, routes each call to the actor that owns it, stops it."""

    def __init__(
        self,
        config: Config,
        *,
        processor: Processor | None = None,
        fs: FileSystem | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self._loop = loop
        self._deliveries: Deliveries | None = None
        self.instance = instance_id()
        self._processor = processor
        self._fs = fs
        self._lock = threading.Lock()
        self._listener: EventListener | None = None  # on PostgreSQL: other instances' events
        self._libraries: dict[int, pykka.ActorRef[Any]] = {}
        self._running = False
        self._bus: pykka.ActorRef[Any] | None = None
        self._database: Database | None = None
        self._store_ref: pykka.ActorRef[Any] | None = None
        self._store: StoreClient | None = None
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._watchdog: pykka.ActorRef[Any] | None = None
        self._validator: pykka.ActorRef[Any] | None = None
        self._cleanup: pykka.ActorRef[Any] | None = None
        self._health: pykka.ActorRef[Any] | None = None
        self._workers: pykka.ActorRef[Any] | None = None
        self._pool: FilePool | None = None
        self._registered = False  # this process's row in `instances`
        self._watchers: pykka.ActorRef[Any] | None = None  # the WatchKeeper, when this runtime watches
        self.metrics = Metrics()
        self.aio = AsyncRuntime(self)

    # ---- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        config: Config | None = None,
        *,
        processor: Processor | None = None,
        processors: list[str] | tuple[str, ...] | None = None,
        fs: FileSystem | None = None,
        passive: bool = False,
        watch: bool = True,
        webhooks: Any = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Runtime:
        """Start every actor, migrate the database, recover orphans, and return once calls can be taken.

        `processors` names the per-file work run in worker processes (built-ins `audio_tags`,
        `image_info`, `video_probe`, or `package.module:function`), instead of `[scan] processors`;
        `processor` is a host callable run in this process. `passive=True` starts only the store and the
        event bus: for reading (status, events) without running scans or safeguards. `watch=False` starts
        no watchers (a one-shot scan), nor does `[watch] enabled = false`; else every library whose `watch` is on
        is watched (DESIGN §12).
        `webhooks=[{"url", "secret", "kinds"}, ...]` replaces the config's webhooks (validated before
        anything starts); deliveries run on `loop` (a running event loop of the host's, such as the admin
        app's) or else on a loop thread of their own.
        """
        config = config or load_config()
        if processors is not None:
            config = config.replace(scan={"processors": tuple(processors)})
        config = config.replace(webhooks=config.webhooks if webhooks is None else webhooks)
        if not passive:
            resolve(config.scan.processors)  # a name that does not import stops start-up here
        runtime = cls(config, processor=processor, fs=fs, loop=loop)
        runtime._start(passive)
        if watch and not passive and config.watch.enabled:
            runtime.watch()
        return runtime

    def watch(self, library_ids: Collection[int] | None = None) -> None:
        """Watch every library whose `watch` is on (or only these ones): a watcher each, restarted with
        backoff by the WatchKeeper (Runtime.start does this unless told `watch=False`)."""
        from scanguard.actors.watch_keeper import WatchKeeper  # noqa: PLC0415 - not for one-shot scans
        from scanguard.actors.watcher import WatchParts  # noqa: PLC0415

        if not self._running or self._supervisor is None:
            raise RuntimeStopped()
        if self._watchers is not None:
            return

        def start(library_id: int, paths: tuple[str, ...] | None, trigger: str) -> Job:
            return self.start_scan(library_id, paths=None if paths is None else list(paths), trigger=trigger)

        only = None if library_ids is None else frozenset(library_ids)
        try:
            self._watchers = WatchKeeper.start(
                WatchParts(self.config, self.store, self.metrics, start, only=only)
            )
        except Exception:
            self.stop()
            raise

    def _sync_watchers(self) -> None:
        """Tell the keeper that a library's watch switch (or the set of libraries) changed."""
        if self._watchers is not None:
            from scanguard.actors.watch_keeper import Sync  # noqa: PLC0415

            with contextlib.suppress(pykka.ActorDeadError):
                self._watchers.tell(Sync())

    def _start(self, passive: bool) -> None:
        configure_logging(self.config.log)
        try:
            self._start_parts(passive)
        except BaseException as exc:
            # one way down for a start that failed at any step: what was started is stopped, in reverse
            log.error("runtime.start_failed", instance=self.instance, error=f"{type(exc).__name__}: {exc}")
            self._running = False
            self._teardown()
            raise

    def _start_parts(self, passive: bool) -> None:
        self._bus = EventBus.start()
        self._database = Database(self.config, self.instance)
        self._store_ref = StoreActor.start(self._database, self._bus)
        self._store = StoreClient(self.config, self._database, self._store_ref)
        self._store.ping()  # the writer migrated the schema, or says why it could not
        self._running = True
        if passive:
            return
        self._join()
        cfg, store = self.config, self.store
        if cfg.scan.processors:
            self._pool = FilePool(cfg.scan.processors, cfg.scan)
            self._workers = WorkerPoolActor.start(self._pool, cfg.safeguards.force_kill_timeout)
        work = FileWork(self._pool, self._processor, self.metrics)
        self._supervisor = Supervisor.start(cfg, store, self.metrics, work=work, fs=self._fs)
        if cfg.webhooks:
            # imported only when webhooks are configured: aiohttp's client costs a CLI scan's start-up time
            from scanguard.actors.webhooks import Deliveries, DeliveryParts  # noqa: PLC0415
            from scanguard.webhooks.sender import Sender  # noqa: PLC0415

            sender = Sender(cfg.webhook_delivery, self._loop)  # Deliveries owns it from here, even failing
            self._deliveries = Deliveries.start(DeliveryParts(cfg, store, sender, self.metrics), self._bus)
        parts = Collaborators(cfg, self.instance, store, self._supervisor, self._library, self.metrics)
        self._watchdog = Watchdog.start(parts)
        # boot recovery: running jobs left by a dead process are handled as orphans before start returns
        report = self._ask(self._watchdog, Sweep("boot"), "boot_recovery")
        self._validator = StateValidator.start(parts)
        self._cleanup = CleanupScheduler.start(parts)
        self._health = HealthChecker.start(parts, self._actor_refs)
        log.info(
            "runtime.started",
            instance=self.instance,
            database=self.config.database.url.split("@")[-1],
            orphans=list(report.orphaned),
        )

    @property
    def store(self) -> Store:
        """The store seam (one method = one transaction): writes through the writer's mailbox, reads here."""
        if self._store is None:
            raise RuntimeStopped()
        return self._store

    @property
    def database(self) -> Database:
        """The database's engines (the admin API reads through its async engine on its own loop)."""
        if self._database is None:
            raise RuntimeStopped()
        return self._database

    @property
    def running(self) -> bool:
        return self._running

    def stop(self) -> None:
        """Pause this process's running scans with reason `shutdown`, then stop actors in reverse order."""
        if not self._running:
            return
        self._running = False
        deadline = time.monotonic() + self.config.safeguards.shutdown_timeout
        # the periodic safeguards stop first: this watchdog must not take back what this shutdown pauses
        self._stop_periodic()
        try:
            supervised = self._ask(self._supervisor, LiveDetail(), "shutdown") if self._supervisor else None
            for job_id in sorted({*supervised.live, *supervised.pending}) if supervised else ():
                remaining = max(0.1, deadline - time.monotonic())
                try:
                    job = self.store.read(GetJob(job_id))
                    self._ask(
                        self._library(job.library_id), PauseScan(job_id, "shutdown"), "shutdown", remaining
                    )
                except ScanguardError as exc:
                    log.warning("runtime.shutdown_pause_failed", job_id=job_id, error=str(exc))
        finally:
            self._teardown()
        log.info("runtime.stopped", instance=self.instance)

    def _join(self) -> None:
        """Register this process in `instances` and, on PostgreSQL, hear the other instances' committed
        events and publish them on this bus."""
        self.store.register_instance()
        self._registered = True
        if not is_postgresql(self.config.database.url):
            return
        assert self._bus is not None  # started before the store
        deliver = RemoteEvents(
            self._bus,
            lambda: self._validator,
            lambda: self._watchdog,
            self.config.safeguards.auto_resume_orphans,
        )
        from scanguard.store.notify import EventListener  # noqa: PLC0415 - asyncpg only when on PostgreSQL

        self._listener = EventListener(self.config.database.url, self.instance, deliver)
        self._listener.start()

    def _leave(self) -> None:
        """Remove this process's row from `instances`: a clean shutdown is not a dead instance."""
        try:
            self.store.remove_instance()
        except ScanguardError as exc:
            log.warning("runtime.leave_failed", instance=self.instance, error=str(exc))

    def _stop_periodic(self) -> None:
        self._stop_refs([self._watchers, self._health, self._cleanup, self._validator, self._watchdog])

    def _teardown(self) -> None:
        """The one way down, for stop() and for a start that failed half-way: everything started is
        stopped in the reverse order of starting (what never started is None, and skipped)."""
        timeout = self.config.safeguards.force_kill_timeout
        if self._registered:
            self._registered = False
            self._leave()
        with self._lock:
            libraries = list(self._libraries.values())
            self._libraries.clear()
        self._stop_periodic()
        if self._deliveries is not None:
            self._deliveries.stop(timeout)
            self._deliveries = None
        self._stop_refs([*libraries, self._supervisor, self._workers])
        if self._pool is not None:
            self._pool.close(timeout)  # the workers' actor closed it, unless it never started
            self._pool = None
        if self._listener is not None:
            self._listener.stop(timeout)
            self._listener = None
        self._stop_refs([self._store_ref, self._bus])
        self._health = self._cleanup = self._validator = self._watchdog = self._workers = None
        self._watchers = None
        self._supervisor = self._store_ref = self._bus = self._store = None
        if self._database is not None:
            self._database.dispose()
            self._database = None
        self.aio.close()

    def _stop_refs(self, refs: list[pykka.ActorRef[Any] | None]) -> None:
        for ref in refs:
            if ref is not None and ref.is_alive():
                try:
                    ref.stop(block=True, timeout=self.config.safeguards.force_kill_timeout)
                except pykka.Timeout:
                    log.error("runtime.actor_stop_timeout", actor=str(ref))

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- routing -----------------------------------------------------------------------------

    def _ask(
        self, ref: pykka.ActorRef[Any] | None, message: Any, op: str, timeout: float | None = None
    ) -> Any:
        if ref is None or (not self._running and op != "shutdown"):
            raise RuntimeStopped()
        limit = timeout if timeout is not None else self.config.safeguards.operation_timeout
        try:
            return ref.ask(message, timeout=limit)
        except pykka.Timeout as exc:
            raise OperationTimeout(op, limit) from exc
        except pykka.ActorDeadError as exc:
            raise RuntimeStopped(f"{op}: the runtime is stopping") from exc

    def _operate(self, request: Request) -> Any:
        """A safeguarded operation through its library's mailbox, counted and timed for health and metrics;
        one its pre-flight read refused is answered at once (without a write, never blocking)."""
        op = request.op
        started = time.perf_counter()
        outcome = "failed"
        try:
            if request.refused is not None:
                raise request.refused
            result = self._ask(self._library(request.library_id), request.message, op)
        except OperationTimeout:
            self.metrics.operation_timeouts.labels(op).inc()
            self.metrics.lock_timeouts.inc()
            raise
        except ScanguardError as exc:
            outcome = "rejected" if exc.status < 500 else "failed"
            raise
        else:
            outcome = "ok"
            return result
        finally:
            self.metrics.operations.labels(op, outcome).inc()
            self.metrics.operation_seconds.labels(op).observe(time.perf_counter() - started)

    def _actor_refs(self) -> dict[str, pykka.ActorRef[Any]]:
        refs = {
            "store": self._store_ref,
            "events": self._bus,
            "supervisor": self._supervisor,
            "watchdog": self._watchdog,
            "validator": self._validator,
            "cleanup": self._cleanup,
            "workers": self._workers,
            "watchers": self._watchers,
        }
        with self._lock:
            refs.update({f"library:{lid}": ref for lid, ref in self._libraries.items()})
        if self._deliveries is not None:
            refs.update({f"webhook:{key}": ref for key, ref in self._deliveries.refs().items()})
        return {name: ref for name, ref in refs.items() if ref is not None}

    def _read(self) -> Store:
        """The store, for a read: run on this thread, read-only, bounded by the database's own timeouts."""
        if not self._running:
            raise RuntimeStopped()
        return self.store

    def _library(self, library_id: int) -> pykka.ActorRef[Any]:
        with self._lock:
            ref = self._libraries.get(library_id)
            if ref is None or not ref.is_alive():
                if not self._running or self._supervisor is None:
                    raise RuntimeStopped()
                ref = LibraryActor.start(library_id, self.config, self.instance, self.store, self._supervisor)
                self._libraries[library_id] = ref
            return ref

    # ---- libraries ---------------------------------------------------------------------------

    def add_library(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        kind: str = "mixed",
        *,
        watch: bool | None = None,
    ) -> Library:
        """Register a folder as a library: it must be an existing directory (inside allowed_roots, if set).
        `watch` (default `[watch] default`): whether the library follows its folders by itself."""
        kind = library_kind(kind)
        resolved = library_path(path, self.config.http.allowed_roots)
        label = library_name(name, resolved)
        if not self._running:
            raise RuntimeStopped()
        enabled = self.config.watch.default if watch is None else bool(watch)
        library = self.store.add_library(str(resolved), label, kind, enabled)
        self._sync_watchers()
        return library

    def set_watch(self, library_id: int, enabled: bool) -> Library:
        """Switch a library's watching on or off (NotFound for an unknown id)."""
        if not isinstance(enabled, bool):
            raise BadRequest("watch must be true or false", field="watch")
        library_id = check_id("library_id", library_id)
        if not self._running:
            raise RuntimeStopped()
        library = self.store.set_library_watch(library_id, enabled)
        self._sync_watchers()
        return library

    def get_library(self, library_id: int) -> Library:
        return self._read().read(GetLibrary(library_id))

    def list_libraries(self) -> tuple[Library, ...]:
        return self._read().read(ListLibraries())

    def remove_library(self, library_id: int) -> RemovedLibrary:
        """Stop its scan and remove the library, its jobs and its files in one transaction."""
        library_id = check_id("library_id", library_id)
        self.get_library(library_id)
        removed: RemovedLibrary = self._operate(Request("remove_library", library_id, RemoveLibrary()))
        self._sync_watchers()
        with self._lock:
            ref = self._libraries.pop(library_id, None)
        if ref is not None:
            ref.stop(block=False)
        return removed

    def list_files(
        self, library_id: int, *, limit: int = 100, offset: int = 0, errors: bool = False
    ) -> Page[MediaFile]:
        """A library's files, by path; `errors=True`: only those whose per-file work failed."""
        return self._read().read(ListFiles(library_id, limit, offset, errors))

    # ---- scans -------------------------------------------------------------------------------

    def start_scan(
        self,
        library_id: int,
        *,
        retry_failed: bool = False,
        paths: Sequence[str | os.PathLike[str]] | None = None,
        trigger: str = "user",
    ) -> Job:
        """Start a scan; LibraryBusy names the job in the way.

        A rescan does not process unchanged files whose per-file work failed before, unless
        `retry_failed` is set. `paths` (relative to the library root, or absolute inside it) scope the
        scan to those folders and files; InvalidScope for one escaping the root, and nothing starts.
        `trigger` says what asked for it (one of scanguard.TRIGGERS).
        """
        read_at = time.monotonic()
        library, busy = self._read().read(LibraryForStart(library_id))
        request = start_request(read_at, library, busy, retry_failed, paths, trigger)
        job: Job = self._operate(request)
        return job

    def pause_scan(self, job_id: int, reason: str = "user") -> Job:
        job: Job = self._operate(job_request("pause_scan", *self._job_read(job_id), reason))
        return job

    def resume_scan(self, job_id: int) -> Job:
        job: Job = self._operate(job_request("resume_scan", *self._job_read(job_id)))
        return job

    def delete_job(self, job_id: int) -> DeletedJob:
        """Hard delete: stop it if it runs, remove it and the media files it discovered."""
        deleted: DeletedJob = self._operate(job_request("delete_job", *self._job_read(job_id)))
        return deleted

    def _job_read(self, job_id: int) -> tuple[float, Job, Library]:
        """A control operation's pre-flight read: when it began, the job, its library."""
        read_at = time.monotonic()
        return (read_at, *self._read().read(JobWithLibrary(job_id)))

    def get_job(self, job_id: int) -> Job:
        return self._read().read(GetJob(job_id))

    def list_jobs(
        self, *, status: str | None = None, library_id: int | None = None, limit: int = 100, offset: int = 0
    ) -> Page[Job]:
        return self._read().read(ListJobs(job_statuses(status), library_id, limit, offset))

    def current_jobs(self) -> tuple[Job, ...]:
        """Every job in pending, running or paused."""
        return self._read().read(ActiveJobs())

    def instances(self) -> tuple[Instance, ...]:
        """Every instance registered on this database, live or gone, with the jobs each runs."""
        return self._read().read(ListInstances())

    def wait_for_job(
        self,
        job_id: int,
        statuses: tuple[str, ...] = ("completed", "failed", "paused"),
        timeout: float = 60.0,
    ) -> Job:
        """Block until the job reaches one of `statuses` (woken by events, re-read from the database)."""
        changed = threading.Event()
        sid = self.subscribe(lambda e: changed.set() if e.job_id == job_id else None)
        try:
            deadline = time.monotonic() + timeout
            while True:
                job = self.get_job(job_id)
                if job.status in statuses:
                    return job
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise OperationTimeout(
                        f"waiting for job {job_id} to become {'/'.join(statuses)}", timeout
                    )
                changed.wait(min(remaining, 0.5))
                changed.clear()
        finally:
            self.unsubscribe(sid)

    # ---- events ------------------------------------------------------------------------------

    def events(
        self,
        *,
        job_id: int | None = None,
        library_id: int | None = None,
        kind: str | None = None,
        family: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest_first: bool = False,
    ) -> tuple[Event, ...]:
        """Recorded events, oldest first: of one job or library, of a `kind` (a prefix when it ends with
        '.') and of a `family` (job, watch, file, library, system); both given, events matching both."""
        query = EventQuery(job_id, library_id, event_family(kind, family), after_id, limit, newest_first)
        return self._read().read(ListEvents(query))

    def subscribe(self, callback: Callable[[Event], None]) -> int:
        """Call `callback(event)` for every committed event, on the event bus's thread."""
        subscription: int = self._ask(self._bus, Subscribe(callback), "subscribe")
        return subscription

    def unsubscribe(self, subscription: int) -> None:
        """Stop calling that subscription's callback. A subscription ends with the event bus, so on a
        runtime stopped or stopping this has nothing left to do; a bus too busy to answer within
        operation_timeout is OperationTimeout."""
        bus, limit = self._bus, self.config.safeguards.operation_timeout
        if bus is None:
            return
        try:
            bus.ask(Unsubscribe(subscription), timeout=limit)
        except pykka.ActorDeadError:
            return  # the bus stopped meanwhile, and its subscriptions with it
        except pykka.Timeout as exc:
            raise OperationTimeout("unsubscribe", limit) from exc

    def webhooks(self) -> list[dict[str, Any]]:
        """Each configured webhook: URL and kinds (never the secret), cursor, lag, lease, last success and
        failure, and its latest dead deliveries."""
        hooks = self.config.webhooks
        states = self._read().read(WebhookStates(tuple((h.key, h.kinds) for h in hooks)))
        return [
            {"url": hook.url, "kinds": list(hook.kinds), **state.to_dict()}
            for hook, state in zip(hooks, states, strict=True)
        ]

    def sweep(self) -> SweepReport:
        """Run the watchdog now (it also runs every safeguards.watchdog_interval)."""
        report: SweepReport = self._ask(self._watchdog, Sweep("manual"), "sweep")
        return report

    def validate_state(self) -> ValidationReport:
        """Run the state validator now (it also runs every safeguards.state_validation_interval)."""
        report: ValidationReport = self._ask(self._validator, Validate("manual"), "validate_state")
        return report

    def run_cleanup(self) -> dict[str, int]:
        """Run the retention pass now (it also runs every safeguards.cleanup_interval)."""
        removed: dict[str, int] = self._ask(self._cleanup, RunCleanup(), "run_cleanup")
        return removed

    def check_health(self) -> dict[str, Any]:
        """Take a health snapshot now (one is also taken every safeguards.health_check_interval)."""
        snapshot: dict[str, Any] = self._ask(self._health, Check(), "check_health")
        return snapshot

    def emergency_cleanup(self, requested_by: str = "api") -> dict[str, Any]:
        """Pause every scan (checkpoints kept), remove orphaned and old data, reset memory to the database."""
        timeout = self.config.safeguards.operation_timeout * 4
        report: dict[str, Any] = self._ask(
            self._cleanup, EmergencyCleanup(requested_by), "emergency_cleanup", timeout
        )
        return report

    def safeguard_status(self) -> dict[str, Any]:
        """The status endpoint's answer: health snapshot, safeguard stats, job counts, effective config."""
        health: dict[str, Any] = self._ask(self._health, Stats(), "status")
        if health.get("at") is None:
            health = self.check_health()
        return status_report(
            StatusParts(
                config=self.config,
                instance=self.instance,
                metrics=self.metrics,
                health=health,
                counts=self._read().read(JobCounts()),
                supervised=self._ask(self._supervisor, LiveDetail(), "status"),
                workers_alive=self._workers is not None and self._workers.is_alive(),
                validator=self._ask(self._validator, Stats(), "status"),
                cleanup=self._ask(self._cleanup, Stats(), "status"),
                events_listener=None if self._listener is None else self._listener.status(),
            )
        )

    def ping(self) -> float:
        """Round-trip the database through the store actor; seconds, or StoreUnavailable."""
        if not self._running:
            raise RuntimeStopped()
        return self.store.ping()

    def store_waits(self) -> dict[int, str]:
        """{job_id: error} of this process's scans whose store failed under them and that wait for it to
        answer before their `store_unavailable` pause can be recorded."""
        supervised: Supervised = self._ask(self._supervisor, LiveDetail(), "store_waits")
        return dict(supervised.store_waits)

    def live_scans(self) -> dict[int, int]:
        """{job_id: fencing token} of this process's live scan actors."""
        supervised: Supervised = self._ask(self._supervisor, LiveDetail(), "live_scans")
        return {job_id: token for job_id, (token, _library) in supervised.live.items()}
