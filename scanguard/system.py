"""One process's actor system, assembled once at start (DESIGN §3): each part is started in order and its
stop registered as it starts, so that a start failing half-way and a stop run the same stops, in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka
import structlog

from scanguard.actors.cleanup import CleanupScheduler
from scanguard.actors.events import EventBus
from scanguard.actors.health import HealthChecker
from scanguard.actors.libraries import Libraries
from scanguard.actors.state_validator import StateValidator
from scanguard.actors.store import StoreActor, StoreClient
from scanguard.actors.supervisor import LiveDetail, Supervised, Supervisor
from scanguard.actors.ticking import Collaborators
from scanguard.actors.watch_slot import WatchSlot
from scanguard.actors.watchdog import Sweep, SweepReport, Watchdog
from scanguard.actors.workers import WorkerPoolActor
from scanguard.config import Config
from scanguard.control import PauseScan
from scanguard.errors import ScanguardError
from scanguard.metrics import Metrics
from scanguard.processing.file_work import FileWork
from scanguard.processing.pool import FilePool
from scanguard.remote import RemoteEvents
from scanguard.routing import ask
from scanguard.store.database import Database
from scanguard.store.engine import is_postgresql
from scanguard.store.reads import GetJob

if TYPE_CHECKING:
    from scanguard.actors.webhooks import Deliveries
    from scanguard.processing.context import Processor
    from scanguard.store.notify import EventListener
    from scanguard.walk import FileSystem

log = structlog.get_logger("scanguard.runtime")


@dataclass(frozen=True, slots=True)
class Core:
    """What every runtime runs, a passive one too: the event bus and the store (its writer actor and the
    database's engines), and the stops of everything started since, in the order of starting."""

    config: Config
    instance: str
    metrics: Metrics
    bus: pykka.ActorRef[Any]
    database: Database
    writer: pykka.ActorRef[Any]
    store: StoreClient
    stops: contextlib.ExitStack

    def stop(self) -> None:
        """Run every stop registered, the last started first (a second call does nothing)."""
        self.stops.close()


@dataclass(frozen=True, slots=True)
class System:
    """Every part of an active runtime, each started once: the core, the scans' supervisor and library
    actors, the safeguards, the watchers' slot; workers, webhook deliveries and the other instances' events
    when the configuration (processors, webhooks, PostgreSQL) asks for them."""

    core: Core
    supervisor: pykka.ActorRef[Any]
    libraries: Libraries
    watchdog: pykka.ActorRef[Any]
    validator: pykka.ActorRef[Any]
    cleanup: pykka.ActorRef[Any]
    health: pykka.ActorRef[Any]
    watch: WatchSlot
    workers: pykka.ActorRef[Any] | None
    deliveries: Deliveries | None
    listener: EventListener | None

    def actors(self) -> dict[str, pykka.ActorRef[Any]]:
        """The actors the health checker pings, by name."""
        core = self.core
        refs = {"store": core.writer, "events": core.bus, "supervisor": self.supervisor}
        refs |= {"watchdog": self.watchdog, "validator": self.validator, "cleanup": self.cleanup}
        if self.workers is not None:
            refs["workers"] = self.workers
        refs |= self.watch.refs() | self.libraries.refs()
        if self.deliveries is not None:
            refs |= {f"webhook:{key}": ref for key, ref in self.deliveries.refs().items()}
        return refs

    def stop(self) -> None:
        """Stop the periodic safeguards (this watchdog must not take back what this stop pauses), pause this
        process's scans with reason `shutdown` within shutdown_timeout, then run every stop, in reverse."""
        sg = self.core.config.safeguards
        deadline = time.monotonic() + sg.shutdown_timeout
        try:
            periodic = [*self.watch.close(), self.health, self.cleanup, self.validator, self.watchdog]
            stop_actors(periodic, sg.force_kill_timeout)
            supervised: Supervised = ask(self.supervisor, LiveDetail(), "shutdown", sg.operation_timeout)
            for job_id in sorted({*supervised.live, *supervised.pending}):
                remaining = max(0.1, deadline - time.monotonic())
                try:
                    job = self.core.store.read(GetJob(job_id))
                    pause = PauseScan(job_id, "shutdown")
                    ask(self.libraries.get(job.library_id), pause, "shutdown", remaining)
                except ScanguardError as exc:
                    log.warning("runtime.shutdown_pause_failed", job_id=job_id, error=str(exc))
        finally:
            self.core.stop()


def start_core(config: Config, instance: str, metrics: Metrics, stops: contextlib.ExitStack) -> Core:
    """Start the event bus and the store, registering their stops on `stops`; returns once the writer has
    migrated the schema (or raised why it could not)."""
    timeout = config.safeguards.force_kill_timeout
    bus = EventBus.start()
    stops.callback(stop_actors, [bus], timeout)
    database = Database(config, instance)
    stops.callback(database.dispose)
    writer = StoreActor.start(database, bus)
    stops.callback(stop_actors, [writer], timeout)
    store = StoreClient(config, database, writer)
    store.ping()
    return Core(config, instance, metrics, bus, database, writer, store, stops)


def start_system(
    core: Core,
    *,
    processor: Processor | None = None,
    fs: FileSystem | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> System:
    """Start the rest on `core`, in order, registering each stop on its stops: this process's `instances`
    row, the other instances' events, the workers, the supervisor, the webhook deliveries, and the
    safeguards; boot recovery handles the running jobs a dead process left as orphans before this returns.
    `processor` runs per file in this process, `fs` replaces the filesystem (tests), and deliveries run
    on `loop` (else on a loop thread of their own)."""
    cfg, store, stops, metrics = core.config, core.store, core.stops, core.metrics
    timeout = cfg.safeguards.force_kill_timeout
    built: list[System] = []  # the system once built: the listener's policy and the health checker read it
    store.register_instance()
    stops.callback(_leave, store, core.instance)
    listener = _listen(core, built)
    pool = workers = None
    if cfg.scan.processors:
        pool = FilePool(cfg.scan.processors, cfg.scan)
        stops.callback(pool.close, timeout)  # the workers' actor closes it, unless it never started
        workers = _started(stops, WorkerPoolActor.start(pool, timeout), timeout)
    work = FileWork(pool, processor, metrics)
    supervisor = _started(stops, Supervisor.start(cfg, store, metrics, work=work, fs=fs), timeout)
    libraries = Libraries(cfg, core.instance, store, supervisor)
    stops.callback(lambda: stop_actors(libraries.close(), timeout))
    deliveries = _deliver(core, loop)
    parts = Collaborators(cfg, core.instance, store, supervisor, libraries.get, metrics)
    watchdog = _started(stops, Watchdog.start(parts), timeout)
    report: SweepReport = ask(watchdog, Sweep("boot"), "boot_recovery", cfg.safeguards.operation_timeout)
    validator = _started(stops, StateValidator.start(parts), timeout)
    cleanup = _started(stops, CleanupScheduler.start(parts), timeout)
    health = _started(stops, HealthChecker.start(parts, lambda: built[0].actors() if built else {}), timeout)
    watch = WatchSlot()  # its keeper, once started, stops first
    stops.callback(lambda: stop_actors(watch.close(), timeout))
    system = System(
        core=core,
        supervisor=supervisor,
        libraries=libraries,
        watchdog=watchdog,
        validator=validator,
        cleanup=cleanup,
        health=health,
        watch=watch,
        workers=workers,
        deliveries=deliveries,
        listener=listener,
    )
    built.append(system)
    log.info(
        "runtime.started",
        instance=core.instance,
        database=cfg.database.url.split("@")[-1],
        orphans=list(report.orphaned),
    )
    return system


def stop_actors(refs: Iterable[pykka.ActorRef[Any]], timeout: float) -> None:
    """Stop each actor still alive, waiting at most `timeout` for each; one that does not stop is logged."""
    for ref in refs:
        if ref.is_alive():
            try:
                ref.stop(block=True, timeout=timeout)
            except pykka.Timeout:
                log.error("runtime.actor_stop_timeout", actor=str(ref))


def _started(stops: contextlib.ExitStack, ref: pykka.ActorRef[Any], timeout: float) -> pykka.ActorRef[Any]:
    stops.callback(stop_actors, [ref], timeout)
    return ref


def _leave(store: StoreClient, instance: str) -> None:
    """Remove this process's row from `instances`: a clean shutdown is not a dead instance."""
    try:
        store.remove_instance()
    except ScanguardError as exc:
        log.warning("runtime.leave_failed", instance=instance, error=str(exc))


def _listen(core: Core, built: list[System]) -> EventListener | None:
    """On PostgreSQL: hear the other instances' committed events and publish them on this bus."""
    cfg = core.config
    if not is_postgresql(cfg.database.url):
        return None
    from scanguard.store.notify import EventListener  # noqa: PLC0415 - asyncpg only when on PostgreSQL

    deliver = RemoteEvents(
        core.bus,
        lambda: built[0].validator if built else None,  # the safeguards start after the listener
        lambda: built[0].watchdog if built else None,
        cfg.safeguards.auto_resume_orphans,
    )
    listener = EventListener(cfg.database.url, core.instance, deliver)
    core.stops.callback(listener.stop, cfg.safeguards.force_kill_timeout)
    listener.start()
    return listener


def _deliver(core: Core, loop: asyncio.AbstractEventLoop | None) -> Deliveries | None:
    """With webhooks configured: their delivery actors, nudged by the event bus."""
    cfg = core.config
    if not cfg.webhooks:
        return None
    # imported only when webhooks are configured: aiohttp's client costs a CLI scan's start-up time
    from scanguard.actors.webhooks import Deliveries, DeliveryParts  # noqa: PLC0415
    from scanguard.webhooks.sender import Sender  # noqa: PLC0415

    sender = Sender(cfg.webhook_delivery, loop)  # Deliveries owns it from here, even failing
    deliveries = Deliveries.start(DeliveryParts(cfg, core.store, sender, core.metrics), core.bus)
    core.stops.callback(deliveries.stop, cfg.safeguards.force_kill_timeout)
    return deliveries
