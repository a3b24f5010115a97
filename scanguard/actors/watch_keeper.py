"""The WatchKeeper (DESIGN §12): starts a Watcher for every library whose watch is on, stops those switched
off, and restarts a crashed one with backoff and a catch-up scan."""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from scanguard.actors.liveness import Answering
from scanguard.actors.watcher import Watcher, WatcherDown, WatchParts
from scanguard.backoff import backoff_delay
from scanguard.errors import NotFound, ScanguardError
from scanguard.records import Library
from scanguard.store.reads import GetLibrary, WatchedLibraries

log = structlog.get_logger("scanguard.watcher")


@dataclass(frozen=True, slots=True)
class Sync:
    """Start a watcher for every library whose watch is on, stop those whose watch is off or gone."""


@dataclass(frozen=True, slots=True)
class WatcherOf:
    """Reply: the live watcher of a library, or None (tests use it to reach a watcher)."""

    library_id: int


@dataclass(frozen=True, slots=True)
class _Restart:
    library_id: int


@dataclass(frozen=True, slots=True)
class _Tick:
    """The periodic Sync (other instances' switches and libraries), every lease_ttl / 3."""


class WatchKeeper(Answering):
    """Owns this process's watchers: one per library whose watch is on; a crashed one is restarted with
    backoff (and starts with a catch_up scan, as every watcher does)."""

    def __init__(self, parts: WatchParts) -> None:
        super().__init__()
        self.parts = parts
        self.sync_interval = max(parts.config.safeguards.lease_ttl / 3, 0.1)
        self._watchers: dict[int, tuple[pykka.ActorRef[Any], float]] = {}
        self._crashes: dict[int, int] = {}
        self._restarting: set[int] = set()
        self._timers: weakref.WeakSet[threading.Timer] = weakref.WeakSet()

    def on_start(self) -> None:
        self.actor_ref.tell(_Tick())

    def on_stop(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        refs = [ref for ref, _ in self._watchers.values()]
        self._watchers.clear()
        # all asked at once, then waited for together: each lets go of its watches and its lease
        stopping = [ref.stop(block=False) for ref in refs]
        deadline = time.monotonic() + self.parts.config.safeguards.force_kill_timeout
        for future in stopping:
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except pykka.Timeout:
                log.error("watch.stop_timeout", after=self.parts.config.safeguards.force_kill_timeout)

    def on_receive(self, message: Any) -> Any:
        match message:
            case Sync():
                self._sync()
            case _Tick():
                self._later(self.sync_interval, _Tick())
                self._sync()
            case WatcherDown(library_id, ref, error):
                self._down(library_id, ref, error)
            case _Restart(library_id):
                self._restart(library_id)
            case WatcherOf(library_id):
                entry = self._watchers.get(library_id)
                return None if entry is None else entry[0]
            case _:
                return super().on_receive(message)
        return None

    def _later(self, delay: float, message: Any) -> None:
        ref = self.actor_ref

        def fire() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(message)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        self._timers.add(timer)
        timer.start()

    def _sync(self) -> None:
        try:
            libraries = self.parts.store.read(WatchedLibraries())
        except ScanguardError as exc:
            log.warning("watch.sync_failed", error=str(exc))
            return
        only = self.parts.only
        wanted = {
            library.id: library
            for library in libraries
            if library.watch.enabled and (only is None or library.id in only)
        }
        for library_id in [lid for lid in self._watchers if lid not in wanted]:
            ref, _ = self._watchers.pop(library_id)
            ref.stop(block=False)
        for library_id, library in wanted.items():
            if library_id not in self._watchers and library_id not in self._restarting:
                self._start(library, None)

    def _start(self, library: Library, fault: str | None) -> None:
        ref = Watcher.start(library, self.parts, self.actor_ref, fault)
        self._watchers[library.id] = (ref, time.monotonic())

    def _down(self, library_id: int, ref: pykka.ActorRef[Any], error: str) -> None:
        entry = self._watchers.get(library_id)
        if entry is None or entry[0] != ref:
            return
        del self._watchers[library_id]
        sg = self.parts.config.safeguards
        attempt = 0 if time.monotonic() - entry[1] > sg.retry_window else self._crashes.get(library_id, 0)
        self._crashes[library_id] = attempt + 1
        delay = backoff_delay(sg.retry_interval, attempt, self.parts.config.watch.rearm_max_interval)
        message = f"the watcher crashed ({error}); restarted in {delay:.3g}s with a catch-up scan"
        log.error(
            "watch.crashed", library_id=library_id, error=error, attempt=attempt + 1, delay=round(delay, 3)
        )
        self.parts.metrics.watch_fallbacks.labels("crashed").inc()
        try:
            self.parts.store.set_watch_state(
                library_id,
                "starting",
                "crashed",
                message,
                "watch.degraded",
                {"reason": "crashed", "message": message},
            )
        except ScanguardError as exc:
            log.warning("watch.state_not_recorded", library_id=library_id, error=str(exc))
        self._restarting.add(library_id)
        self._later(delay, _Restart(library_id))

    def _restart(self, library_id: int) -> None:
        self._restarting.discard(library_id)
        try:
            library = self.parts.store.read(GetLibrary(library_id))
        except NotFound:
            return
        except ScanguardError as exc:
            log.warning("watch.restart_deferred", library_id=library_id, error=str(exc))
            self._restarting.add(library_id)
            self._later(self.sync_interval, _Restart(library_id))
            return
        if library.watch.enabled and library_id not in self._watchers:
            self._start(library, "crashed")
