"""What the periodic safeguard actors share: their collaborators, and a timer that tells them `Tick`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from scanguard.actors.liveness import Answering
from scanguard.config import Config
from scanguard.metrics import Metrics
from scanguard.store.seam import Store


@dataclass(frozen=True, slots=True)
class Tick:
    """Time for the periodic work."""


@dataclass(frozen=True, slots=True)
class Stats:
    """Ask a safeguard actor for its counters (the status endpoint's view of it)."""


@dataclass(frozen=True, slots=True)
class Collaborators:
    """Everything a safeguard actor works with: settings, this instance, the store, the live actors."""

    config: Config
    instance: str
    store: Store
    supervisor: pykka.ActorRef[Any]
    library: Callable[[int], pykka.ActorRef[Any]]
    metrics: Metrics


class Ticker:
    """Owns one timer thread that tells an actor `Tick()` every `interval` seconds until stopped."""

    def __init__(self, ref: pykka.ActorRef[Any], interval: float, name: str) -> None:
        self._ref = ref
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tick-{name}", daemon=True)

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._ref.tell(Tick())
            except pykka.ActorDeadError:
                return


class PeriodicActor(Answering):
    """Owns a safeguard's collaborators and its ticker: started with the actor, stopped with it."""

    def __init__(self, parts: Collaborators, interval: float, name: str) -> None:
        super().__init__()
        self.config = parts.config
        self.instance = parts.instance
        self.store = parts.store
        self.supervisor = parts.supervisor
        self.library = parts.library
        self.metrics = parts.metrics
        self._ticker = Ticker(self.actor_ref, interval, name)

    def on_start(self) -> None:
        self._ticker.start()

    def on_stop(self) -> None:
        self._ticker.stop()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Stats):
            return self.stats()
        return super().on_receive(message)

    def stats(self) -> dict[str, Any]:
        """This safeguard's counters, copied."""
        return {}
