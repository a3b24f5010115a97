"""Periodic ticks for the safeguard actors: a timer thread that tells the actor `Tick` every interval."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pykka


@dataclass(frozen=True, slots=True)
class Tick:
    """Time for the periodic work."""


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
