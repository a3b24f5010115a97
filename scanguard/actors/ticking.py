"""What the periodic safeguard actors share: their collaborators, and a timer that asks them for a `Tick`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from scanguard.actors.liveness import Answering
from scanguard.config import Config
from scanguard.metrics import Metrics
from scanguard.store.seam import Store

log = structlog.get_logger("scanguard.actors")
ANSWER_CHECK = 1.0
"""How often a ticker waiting for its tick's answer looks whether it was stopped (seconds)."""


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
    """Owns one timer thread that asks an actor for a `Tick()` `interval` seconds after the last one was
    handled, until stopped: a fixed delay, not a fixed rate, so a tick slower than its interval (a slow
    store) never leaves ticks piling up in the mailbox — at most one of this ticker's is ever queued."""

    def __init__(self, ref: pykka.ActorRef[Any], interval: float, name: str) -> None:
        self._ref = ref
        self._interval = interval
        self._name = name
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tick-{name}", daemon=True)

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            if not self._handled(self._ref.ask(Tick(), block=False)):
                return

    def _handled(self, answer: pykka.Future[Any]) -> bool:
        """Wait for the tick to be handled; False once the actor or this ticker stopped."""
        while not self._stopped.is_set():
            try:
                answer.get(timeout=ANSWER_CHECK)
            except pykka.Timeout:
                continue  # still working on it: no next tick meanwhile
            except pykka.ActorDeadError:
                return False
            except Exception:  # the tick's boundary: logged, and the next tick tries again
                log.exception("tick.failed", actor=self._name)
            return True
        return False


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
