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

from scanguard.actors.cleanup import EmergencyCleanup, RunCleanup
from scanguard.actors.events import Subscribe, Unsubscribe
from scanguard.actors.health import Check
from scanguard.actors.state_validator import Validate, ValidationReport
from scanguard.actors.supervisor import LiveDetail, Supervised
from scanguard.actors.ticking import Stats
from scanguard.actors.watchdog import Sweep, SweepReport
from scanguard.aio import AsyncRuntime
from scanguard.config import Config, load_config
from scanguard.control import RemoveLibrary, Request, job_request, start_request
from scanguard.errors import BadRequest, OperationTimeout, RuntimeStopped
from scanguard.input_checks import (
    check_id,
    event_family,
    job_statuses,
    library_kind,
    library_name,
    library_path,
)
from scanguard.logs import configure_logging
from scanguard.metrics import Metrics
from scanguard.ownership import instance_id
from scanguard.processing.context import Processor
from scanguard.processing.registry import resolve
from scanguard.records import DeletedJob, Event, EventQuery, Job, Library, MediaFile, Page, RemovedLibrary
from scanguard.routing import ask, operate
from scanguard.status import StatusParts, status_report
from scanguard.store.database import Database
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
from scanguard.system import Core, System, start_core, start_system
from scanguard.walk import FileSystem

if TYPE_CHECKING:
    from scanguard.records import Instance

log = structlog.get_logger("scanguard.runtime")


class Runtime:
    """Host code's handle on one process's actor system (scanguard.system): starts it, routes each call to
    the part that owns it, stops it."""

    def __init__(
        self,
        config: Config,
        *,
        processor: Processor | None = None,
        fs: FileSystem | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.instance = instance_id()
        self.metrics = Metrics()
        self._processor, self._fs, self._loop = processor, fs, loop
        self._core: Core | None = None  # while running
        self._system: System | None = None  # while running, unless passive
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

    def _start(self, passive: bool) -> None:
        configure_logging(self.config.log)
        stops, system = contextlib.ExitStack(), None
        try:
            core = start_core(self.config, self.instance, self.metrics, stops)
            if not passive:
                system = start_system(core, processor=self._processor, fs=self._fs, loop=self._loop)
        except BaseException as exc:
            # one way down for a start that failed at any step: what was started is stopped, in reverse
            log.error("runtime.start_failed", instance=self.instance, error=f"{type(exc).__name__}: {exc}")
            stops.close()
            self.aio.close()
            raise
        self._core, self._system = core, system

    def watch(self, library_ids: Collection[int] | None = None) -> None:
        """Watch every library whose `watch` is on (or only these ones): a watcher each, restarted with
        backoff by the WatchKeeper (Runtime.start does this unless told `watch=False`)."""
        from scanguard.actors.watcher import WatchParts  # noqa: PLC0415 - not for one-shot scans

        system = self.system

        def start(library_id: int, paths: tuple[str, ...] | None, trigger: str) -> Job:
            return self.start_scan(library_id, paths=None if paths is None else list(paths), trigger=trigger)

        only = None if library_ids is None else frozenset(library_ids)
        try:
            system.watch.start(WatchParts(self.config, system.core.store, self.metrics, start, only=only))
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        """Pause this process's running scans with reason `shutdown`, then stop actors in reverse order."""
        core, system = self._core, self._system
        if core is None:
            return
        self._core = self._system = None
        try:
            (core if system is None else system).stop()
        finally:
            self.aio.close()
        log.info("runtime.stopped", instance=self.instance)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._core is not None

    @property
    def system(self) -> System:
        """The started parts of this runtime; RuntimeStopped once stopped, and on a passive one."""
        if self._system is None:
            raise RuntimeStopped()
        return self._system

    @property
    def store(self) -> Store:
        """The store seam (one method = one transaction): writes through the writer's mailbox, reads here."""
        return self._running_core().store

    @property
    def database(self) -> Database:
        """The database's engines (the admin API reads through its async engine on its own loop)."""
        return self._running_core().database

    def _running_core(self) -> Core:
        if self._core is None:
            raise RuntimeStopped()
        return self._core

    def _sync_watchers(self) -> None:
        """Tell the watchers, if this runtime watches, that a library's switch (or the libraries) changed."""
        if self._system is not None:
            self._system.watch.sync()

    def _ask(self, ref: pykka.ActorRef[Any], message: Any, op: str, timeout: float | None = None) -> Any:
        return ask(ref, message, op, self.config.safeguards.operation_timeout if timeout is None else timeout)

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
        enabled = self.config.watch.default if watch is None else bool(watch)
        library = self.store.add_library(str(resolved), label, kind, enabled)
        self._sync_watchers()
        return library

    def set_watch(self, library_id: int, enabled: bool) -> Library:
        """Switch a library's watching on or off (NotFound for an unknown id)."""
        if not isinstance(enabled, bool):
            raise BadRequest("watch must be true or false", field="watch")
        library_id = check_id("library_id", library_id)
        library = self.store.set_library_watch(library_id, enabled)
        self._sync_watchers()
        return library

    def get_library(self, library_id: int) -> Library:
        return self.store.read(GetLibrary(library_id))

    def list_libraries(self) -> tuple[Library, ...]:
        return self.store.read(ListLibraries())

    def remove_library(self, library_id: int) -> RemovedLibrary:
        """Stop its scan and remove the library, its jobs and its files in one transaction."""
        library_id = check_id("library_id", library_id)
        self.get_library(library_id)
        system = self.system
        removed: RemovedLibrary = operate(system, Request("remove_library", library_id, RemoveLibrary()))
        system.watch.sync()
        system.libraries.forget(library_id)
        return removed

    def list_files(
        self, library_id: int, *, limit: int = 100, offset: int = 0, errors: bool = False
    ) -> Page[MediaFile]:
        """A library's files, by path; `errors=True`: only those whose per-file work failed."""
        return self.store.read(ListFiles(library_id, limit, offset, errors))

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
        library, busy = self.store.read(LibraryForStart(library_id))
        request = start_request(read_at, library, busy, retry_failed, paths, trigger)
        job: Job = operate(self.system, request)
        return job

    def pause_scan(self, job_id: int, reason: str = "user") -> Job:
        job: Job = operate(self.system, job_request("pause_scan", *self._job_read(job_id), reason))
        return job

    def resume_scan(self, job_id: int) -> Job:
        job: Job = operate(self.system, job_request("resume_scan", *self._job_read(job_id)))
        return job

    def delete_job(self, job_id: int) -> DeletedJob:
        """Hard delete: stop it if it runs, remove it and the media files it discovered."""
        deleted: DeletedJob = operate(self.system, job_request("delete_job", *self._job_read(job_id)))
        return deleted

    def _job_read(self, job_id: int) -> tuple[float, Job, Library]:
        """A control operation's pre-flight read: when it began, the job, its library."""
        read_at = time.monotonic()
        return (read_at, *self.store.read(JobWithLibrary(job_id)))

    def get_job(self, job_id: int) -> Job:
        return self.store.read(GetJob(job_id))

    def list_jobs(
        self, *, status: str | None = None, library_id: int | None = None, limit: int = 100, offset: int = 0
    ) -> Page[Job]:
        return self.store.read(ListJobs(job_statuses(status), library_id, limit, offset))

    def current_jobs(self) -> tuple[Job, ...]:
        """Every job in pending, running or paused."""
        return self.store.read(ActiveJobs())

    def instances(self) -> tuple[Instance, ...]:
        """Every instance registered on this database, live or gone, with the jobs each runs."""
        return self.store.read(ListInstances())

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
        return self.store.read(ListEvents(query))

    def subscribe(self, callback: Callable[[Event], None]) -> int:
        """Call `callback(event)` for every committed event, on the event bus's thread."""
        subscription: int = self._ask(self._running_core().bus, Subscribe(callback), "subscribe")
        return subscription

    def unsubscribe(self, subscription: int) -> None:
        """Stop calling that subscription's callback. A subscription ends with the event bus, so on a
        runtime stopped or stopping this has nothing left to do; a bus too busy to answer within
        operation_timeout is OperationTimeout."""
        core, limit = self._core, self.config.safeguards.operation_timeout
        if core is None:
            return
        try:
            core.bus.ask(Unsubscribe(subscription), timeout=limit)
        except pykka.ActorDeadError:
            return  # the bus stopped meanwhile, and its subscriptions with it
        except pykka.Timeout as exc:
            raise OperationTimeout("unsubscribe", limit) from exc

    def webhooks(self) -> list[dict[str, Any]]:
        """Each configured webhook: URL and kinds (never the secret), cursor, lag, lease, last success and
        failure, and its latest dead deliveries."""
        hooks = self.config.webhooks
        states = self.store.read(WebhookStates(tuple((h.key, h.kinds) for h in hooks)))
        return [
            {"url": hook.url, "kinds": list(hook.kinds), **state.to_dict()}
            for hook, state in zip(hooks, states, strict=True)
        ]

    def sweep(self) -> SweepReport:
        """Run the watchdog now (it also runs every safeguards.watchdog_interval)."""
        report: SweepReport = self._ask(self.system.watchdog, Sweep("manual"), "sweep")
        return report

    def validate_state(self) -> ValidationReport:
        """Run the state validator now (it also runs every safeguards.state_validation_interval)."""
        report: ValidationReport = self._ask(self.system.validator, Validate("manual"), "validate_state")
        return report

    def run_cleanup(self) -> dict[str, int]:
        """Run the retention pass now (it also runs every safeguards.cleanup_interval)."""
        removed: dict[str, int] = self._ask(self.system.cleanup, RunCleanup(), "run_cleanup")
        return removed

    def check_health(self) -> dict[str, Any]:
        """Take a health snapshot now (one is also taken every safeguards.health_check_interval)."""
        snapshot: dict[str, Any] = self._ask(self.system.health, Check(), "check_health")
        return snapshot

    def emergency_cleanup(self, requested_by: str = "api") -> dict[str, Any]:
        """Pause every scan (checkpoints kept), remove orphaned and old data, reset memory to the database."""
        timeout = self.config.safeguards.operation_timeout * 4
        request = EmergencyCleanup(requested_by)
        report: dict[str, Any] = self._ask(self.system.cleanup, request, "emergency_cleanup", timeout)
        return report

    def safeguard_status(self) -> dict[str, Any]:
        """The status endpoint's answer: health snapshot, safeguard stats, job counts, effective config."""
        system = self.system
        health: dict[str, Any] = self._ask(system.health, Stats(), "status")
        if health.get("at") is None:
            health = self.check_health()
        counts = self.store.read(JobCounts())
        supervised: Supervised = self._ask(system.supervisor, LiveDetail(), "status")
        return status_report(
            StatusParts(
                config=self.config,
                instance=self.instance,
                metrics=self.metrics,
                health=health,
                counts=counts,
                live_scans=len(supervised.live),
                restarting=len(supervised.pending),
                store_waiting=tuple(supervised.store_waits),
                workers_alive=system.workers is not None and system.workers.is_alive(),
                validator=self._ask(system.validator, Stats(), "status"),
                cleanup=self._ask(system.cleanup, Stats(), "status"),
                events_listener=None if system.listener is None else system.listener.status(),
            )
        )

    def ping(self) -> float:
        """Round-trip the database through the store actor; seconds, or StoreUnavailable."""
        return self.store.ping()

    def store_waits(self) -> dict[int, str]:
        """{job_id: error} of this process's scans whose store failed under them and that wait for it to
        answer before their `store_unavailable` pause can be recorded."""
        supervised: Supervised = self._ask(self.system.supervisor, LiveDetail(), "store_waits")
        return dict(supervised.store_waits)

    def live_scans(self) -> dict[int, int]:
        """{job_id: fencing token} of this process's live scan actors."""
        supervised: Supervised = self._ask(self.system.supervisor, LiveDetail(), "live_scans")
        return {job_id: token for job_id, (token, _library) in supervised.live.items()}
