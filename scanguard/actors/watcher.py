"""The Watcher (DESIGN §12): one per watched library, it turns its folders' events into scoped scans and
shows every way watching degrades; its keeper (actors/watch_keeper.py) starts, stops and restarts it."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pykka
import structlog

from scanguard.actors.liveness import Answering
from scanguard.backoff import jittered
from scanguard.config import Config
from scanguard.errors import (
    LibraryBusy,
    LibraryRootUnavailable,
    NotFound,
    RuntimeStopped,
    ScanguardError,
    WatchLimit,
)
from scanguard.metrics import Metrics
from scanguard.records import WATCH_STATES, Job, Library, WatchState
from scanguard.store.reads import PendingPaths
from scanguard.store.seam import Store
from scanguard.watching.coalesce import Coalescer, bounded_scope, file_size
from scanguard.watching.fstype import filesystem_type, is_network
from scanguard.watching.source import LIMIT_MESSAGE, EventSource, InotifySource, RawEvent
from scanguard.watching.tree import WatchTree

log = structlog.get_logger("scanguard.watcher")

StartScan = Callable[[int, tuple[str, ...] | None, str], Job]
"""Start a scan of a library: (library_id, scope paths or None for the whole library, trigger)."""


@dataclass(frozen=True, slots=True)
class WatchParts:
    """What every watcher is built from: settings, store, metrics, how to start a scan, and the seams
    (event source, filesystem-type probe, clock) that tests replace."""

    config: Config
    store: Store
    metrics: Metrics
    start_scan: StartScan
    source_factory: Callable[[], EventSource] = InotifySource
    fs_type: Callable[[str], str] = filesystem_type
    clock: Callable[[], float] = time.monotonic
    only: frozenset[int] | None = None  # watch only these libraries (`scanguard watch PATH`)


@dataclass(frozen=True, slots=True)
class Crash:
    """Fail this watcher as a crash would (a fault seam for tests): its keeper restarts it."""


@dataclass(frozen=True, slots=True)
class WatchStatus:
    """Reply: this watcher's (state, reason), or None while it stands by for another instance's lease."""


@dataclass(frozen=True, slots=True)
class _Pumped:
    events: tuple[RawEvent, ...]


@dataclass(frozen=True, slots=True)
class _PumpFailed:
    error: str


class WatcherFailed(ScanguardError):
    """The watcher's event reader failed."""


class Watcher(Answering):
    """Owns the watching of one library: its inotify watches, its settling changes, its state and lease."""

    def __init__(
        self, library: Library, parts: WatchParts, keeper: pykka.ActorRef[Any], fault: str | None = None
    ) -> None:
        super().__init__()
        self.library_id = library.id
        self.root = library.path
        self.parts = parts
        self.keeper = keeper
        self.cfg = parts.config.watch
        self.store = parts.store
        self.tick = min(max(self.cfg.settle / 4, 0.02), 0.5)
        self.state: WatchState = "starting"
        self.reason: str | None = None
        self.owner = False
        self._fault = fault  # the degraded reason shown until watching works again
        self._want: str | None = "catch_up"  # a whole-library scan wanted, by its trigger
        self._pending = library.watch.pending
        self._coalescer = Coalescer(self.cfg.settle, self.cfg.max_delay, self._size)
        now = parts.clock()
        self._next_renew = now
        self._next_try = now
        self._next_poll = now + self.cfg.poll_interval
        self._next_rescan = now + jittered(self.cfg.rescan_interval) if self.cfg.rescan_interval else None
        self._next_rearm = now
        self._rearms = 0
        self._next_look = now
        self._root_dev: int | None = None
        self._closing = threading.Event()
        self._source: EventSource | None = None
        self._tree: WatchTree | None = None
        self._pump: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------------

    def on_start(self) -> None:
        try:
            self._source = self.parts.source_factory()
        except (OSError, AttributeError) as exc:  # EMFILE (fs.inotify.max_user_instances), or no inotify
            # in this libc (not Linux): polled instead
            log.warning("watch.no_inotify", library_id=self.library_id, error=str(exc))
        else:
            self._tree = WatchTree(self._source, self.root, self.cfg.max_watches)
        self._pump = threading.Thread(target=self._read_events, name=f"watch-{self.library_id}", daemon=True)
        self._pump.start()
        log.info("watch.started", library_id=self.library_id, root=self.root)

    def on_stop(self) -> None:
        self._close()
        if self.owner:
            try:
                self.store.release_watch(self.library_id)
            except ScanguardError as exc:
                log.warning("watch.release_failed", library_id=self.library_id, error=str(exc))
        self._show("off")
        log.info("watch.stopped", library_id=self.library_id)

    def on_failure(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self._close()
        with contextlib.suppress(pykka.ActorDeadError):
            self.keeper.tell(
                WatcherDown(self.library_id, self.actor_ref, f"{exc_type.__name__}: {exc_value}")
            )

    def _close(self) -> None:
        """The one way a watcher lets go: stop the reader, give the watches back, close the source."""
        self._closing.set()
        if self._pump is not None and self._pump is not threading.current_thread():
            self._pump.join(self.tick * 4 + 1)
        if self._tree is not None:
            self._tree.disarm()
        if self._source is not None:
            self._source.close()
            self._source = None

    def _read_events(self) -> None:
        """The reader thread: a blocking read with a timeout (so a stop is honoured), told to the actor."""
        ref, source = self.actor_ref, self._source
        while not self._closing.is_set():
            events: list[RawEvent] = []
            try:
                if source is None:  # no inotify instance: ticks only (the library is polled)
                    self._closing.wait(self.tick)
                else:
                    events = source.read(self.tick)
            except Exception as exc:  # noqa: BLE001 - any reader fault reaches the watcher, then its keeper
                if not self._closing.is_set():
                    with contextlib.suppress(pykka.ActorDeadError):
                        ref.tell(_PumpFailed(f"{type(exc).__name__}: {exc}"))
                return
            try:
                ref.tell(_Pumped(tuple(events)))
            except pykka.ActorDeadError:
                return

    def on_receive(self, message: Any) -> Any:
        match message:
            case _Pumped(events):
                self._turn(events)
            case _PumpFailed(error):
                raise WatcherFailed(f"the event reader of library {self.library_id} failed: {error}")
            case Crash():
                raise WatcherFailed(f"crash injected into the watcher of library {self.library_id}")
            case WatchStatus():
                return (self.state, self.reason) if self.owner else None
            case _:
                return super().on_receive(message)
        return None

    # ---- one turn: lease, then the state's work, then a job if one is due ---------------------------

    def _turn(self, events: tuple[RawEvent, ...]) -> None:
        now = self.parts.clock()
        if not self._hold(now):
            return
        if events:
            self.parts.metrics.watch_events.labels(str(self.library_id)).inc(len(events))
        if self.state == "starting":
            self._begin(now)
        match self.state:
            case "watching":
                self._follow(list(events), now)
            case "polling":
                self._poll(now)
            case "unavailable":
                self._look_for_root(now)
        self._dispatch(now)

    def _hold(self, now: float) -> bool:
        """Claim or renew the watch lease (one watcher per library across instances)."""
        if now < self._next_renew:
            return self.owner
        ttl = self.parts.config.safeguards.lease_ttl
        self._next_renew = now + ttl / 3
        try:
            held = self.store.claim_watch(self.library_id, ttl)
        except ScanguardError as exc:
            log.warning("watch.lease_failed", library_id=self.library_id, error=str(exc))
            return self.owner
        if held != self.owner:
            log.info("watch.lease_" + ("claimed" if held else "lost"), library_id=self.library_id)
            self.owner = held
            self._let_go()
            self.state, self._want = "starting", "catch_up"
        return held

    def _let_go(self) -> None:
        if self._tree is not None:
            self._tree.disarm()
        self._coalescer.clear()

    def _begin(self, now: float) -> None:
        """Watch, poll or wait for the root, as its filesystem and the kernel allow."""
        if not self._root_present():
            self._lose_root(now)
            return
        kind = self.parts.fs_type(self.root)
        if is_network(kind):
            self._enter(
                "polling",
                "network_filesystem",
                f"{self.root} is on a {kind} filesystem: changes made elsewhere send no events; "
                f"scanned every {self.cfg.poll_interval:g}s instead",
            )
            self._next_poll = now + self.cfg.poll_interval
            return
        self._arm(now)

    def _arm(self, now: float) -> bool:
        if self._tree is None:
            self._fall_back(
                now,
                WatchLimit(
                    f"no inotify instance could be made (fs.inotify.max_user_instances); {LIMIT_MESSAGE}"
                ),
            )
            return False
        try:
            self._tree.arm()
        except WatchLimit as exc:
            self._fall_back(now, exc)
            return False
        except (FileNotFoundError, NotADirectoryError):
            self._lose_root(now)
            return False
        self._rearms = 0
        with contextlib.suppress(OSError):
            self._root_dev = os.stat(self.root).st_dev
        self._enter("watching")
        log.info("watch.armed", library_id=self.library_id, watches=self._tree.watches)
        return True

    def _fall_back(self, now: float, exc: WatchLimit) -> None:
        """Watches ran out: poll, and try watching again later (rearm_interval, doubling, capped)."""
        if self._tree is not None:
            self._tree.disarm()
        self._coalescer.clear()
        if self.state != "polling":  # entering: what changed meanwhile is scanned now, then every poll
            self._want = self._want or "catch_up"
            self._next_poll = now + self.cfg.poll_interval
        delay = min(
            self.cfg.rearm_interval * 2**self._rearms,
            max(self.cfg.rearm_max_interval, self.cfg.rearm_interval),
        )
        self._rearms += 1
        self._next_rearm = now + delay
        self._enter("polling", "watch_limit", f"{exc.message}; trying again in {delay:g}s")

    def _follow(self, events: list[RawEvent], now: float) -> None:
        if self._tree is None:
            return
        if events:
            try:
                changes = self._tree.translate(events)
            except WatchLimit as exc:
                self._fall_back(now, exc)
                return
            if changes.root_gone:
                self._lose_root(now)
                return
            if changes.overflow:
                self._coalescer.clear()
                self._want = "catch_up"
                self._enter(
                    "watching",
                    "overflow",
                    "the kernel's event queue overflowed (fs.inotify.max_queued_events): events were lost; "
                    "the whole library is scanned",
                )
            else:
                self._coalescer.touch(changes.paths, now)
        due = self._coalescer.due(now)
        if due:
            self._queue(due, now)
        if self._next_rescan is not None and now >= self._next_rescan:
            self._want = self._want or "rescan"
            self._next_rescan = now + jittered(self.cfg.rescan_interval)

    def _poll(self, now: float) -> None:
        if not self._root_present():
            self._lose_root(now)
            return
        if self.reason == "watch_limit" and now >= self._next_rearm:
            log.info("watch.rearming", library_id=self.library_id, attempt=self._rearms)
            if self._arm(now):
                self._want = "catch_up"
                return
        if now >= self._next_poll:
            self._want = self._want or "poll"
            self._next_poll = now + self.cfg.poll_interval

    def _root_present(self) -> bool:
        """The root is a folder, and not the bare mount point left by an unmount (an empty folder on
        another device than the one watched)."""
        try:
            st = os.stat(self.root)
        except OSError:
            return False
        if not os.path.isdir(self.root):
            return False
        if self._root_dev is not None and st.st_dev != self._root_dev:
            with os.scandir(self.root) as entries:
                return next(entries, None) is not None
        return True

    def _lose_root(self, now: float) -> None:
        """The root is gone or unmounted: no scan (nothing may be marked missing) until it is back."""
        self._let_go()
        self._want = "catch_up"
        self._next_look = now + self.cfg.settle
        self._enter(
            "unavailable",
            "root_unavailable",
            f"{self.root} is gone or unmounted: nothing is marked missing; watched again when it is back",
        )

    def _look_for_root(self, now: float) -> None:
        if now < self._next_look:
            return
        self._next_look = now + self.cfg.settle
        if self._root_present():
            log.info("watch.root_back", library_id=self.library_id, root=self.root)
            self._want = "catch_up"
            self._begin(now)

    # ---- changed paths → the store → a job ----------------------------------------------------------

    def _size(self, rel: str) -> int | None:
        return file_size(os.path.join(self.root, rel))

    def _queue(self, paths: list[str], now: float) -> None:
        """Settled paths wait in the store (a restart loses none) until a job takes them."""
        try:
            self._pending = self.store.add_pending(self.library_id, tuple(paths))
        except ScanguardError as exc:
            log.warning("watch.queue_failed", library_id=self.library_id, paths=len(paths), error=str(exc))
            self._coalescer.touch(paths, now)  # kept here; tried again a settle later
            return
        self.parts.metrics.watch_pending.labels(str(self.library_id)).set(self._pending)

    def _dispatch(self, now: float) -> None:
        """Start the job that is due: a whole-library one (catch_up, rescan, poll, or more than
        max_pending paths), else one scoped to the waiting paths. A busy library is waited for."""
        if self.state not in ("watching", "polling") or now < self._next_try:
            return
        if self._want is None and self._pending == 0:
            return
        trigger, paths, scope = self._want, None, None
        upto = datetime.now(UTC)
        try:
            if trigger is None:
                waiting, upto = self.store.read(PendingPaths(self.library_id, self.cfg.max_pending + 1))
                if not waiting:
                    self._pending = 0
                    return
                trigger = "poll" if self.state == "polling" else "watch"
                paths = waiting if len(waiting) <= self.cfg.max_pending else None
            scope = None if paths is None else bounded_scope(paths)
            job = self.parts.start_scan(self.library_id, scope, trigger)
        except LibraryBusy:
            self._next_try = now + self.cfg.settle  # a job runs: the paths wait for the next one
            return
        except LibraryRootUnavailable:
            self._lose_root(now)
            return
        except (NotFound, RuntimeStopped):
            self._next_try = now + self.cfg.settle  # removed, or shutting down: the keeper stops this watcher
            return
        except ScanguardError as exc:
            log.warning("watch.start_failed", library_id=self.library_id, trigger=trigger, error=str(exc))
            self._next_try = now + self.cfg.settle
            return
        log.info(
            "watch.job_started",
            library_id=self.library_id,
            job_id=job.id,
            trigger=trigger,
            paths=None if paths is None else len(paths),
            scope=None if scope is None else len(scope),
        )
        self._want = None
        try:
            self._pending = self.store.take_pending(self.library_id, paths, upto)
        except ScanguardError as exc:  # they stay, and go into the next job too: scanned twice, not lost
            log.warning("watch.take_failed", library_id=self.library_id, error=str(exc))
        self.parts.metrics.watch_pending.labels(str(self.library_id)).set(self._pending)
        if self._fault == "overflow":
            self._enter("watching")

    # ---- state ----------------------------------------------------------------------------------

    def _enter(self, state: WatchState, reason: str | None = None, message: str | None = None) -> None:
        """Take a state; a new fault is a watch.degraded event, its end a watch.recovered one."""
        event, data = None, {"reason": reason, "message": message}
        if reason is not None and reason != self._fault:
            event = "watch.degraded"
            self.parts.metrics.watch_fallbacks.labels(reason).inc()
            log.warning(
                "watch.degraded", library_id=self.library_id, state=state, reason=reason, message=message
            )
        elif reason is None and self._fault is not None:
            event, data = (
                "watch.recovered",
                {"reason": self._fault, "message": f"watching again after {self._fault}"},
            )
            log.info("watch.recovered", library_id=self.library_id, after=self._fault)
        elif state == self.state and reason == self.reason:
            return
        self._fault = reason
        self.state, self.reason = state, reason
        try:
            self.store.set_watch_state(self.library_id, state, reason, message, event, data)
        except ScanguardError as exc:
            log.warning("watch.state_not_recorded", library_id=self.library_id, state=state, error=str(exc))
        self._show(state)

    def _show(self, state: WatchState) -> None:
        for name in WATCH_STATES:
            self.parts.metrics.watch_state.labels(str(self.library_id), name).set(1 if name == state else 0)


@dataclass(frozen=True, slots=True)
class WatcherDown:
    """A watcher failed (told by the watcher itself, from pykka's on_failure)."""

    library_id: int
    ref: pykka.ActorRef[Any]
    error: str
