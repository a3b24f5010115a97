"""A periodic actor's ticks are timed from the end of the last one: a slow tick never piles ticks up."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pykka
import pytest

from scanguard.actors.ticking import Tick, Ticker
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(30)
INTERVAL = 0.05
WORK = 0.2  # each tick takes four intervals: a slow store


@dataclass
class _Record:
    """What the actor saw, read by the test without asking the actor (whose mailbox is under test)."""

    spans: list[tuple[float, float]] = field(default_factory=list)
    ticks_behind: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handled(self) -> int:
        with self.lock:
            return len(self.spans)


class _Slow(pykka.ThreadingActor):
    """Handles each Tick slower than its interval, noting when it began and ended and the Ticks queued."""

    def __init__(self, record: _Record, fail_first: bool = False) -> None:
        super().__init__()
        self.ticker = Ticker(self.actor_ref, INTERVAL, "slow")
        self.record = record
        self.fail_next = fail_first
        self.pause = threading.Event()

    def on_start(self) -> None:
        self.ticker.start()

    def on_stop(self) -> None:
        self.ticker.stop()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Tick):
            began = time.monotonic()
            self.pause.wait(WORK)  # the work (never set: a deadline wait, not a sleep)
            inbox = list(self.actor_inbox.queue)  # type: ignore[attr-defined] # pykka's queue.Queue
            with self.record.lock:
                self.record.spans.append((began, time.monotonic()))
                self.record.ticks_behind.append(sum(isinstance(e.message, Tick) for e in inbox))
            if self.fail_next:
                self.fail_next = False
                raise RuntimeError("the store broke")
            return None
        return super().on_receive(message)


def test_a_tick_slower_than_its_interval_never_has_another_tick_queued_behind_it() -> None:
    record = _Record()
    ref = _Slow.start(record)
    try:
        wait_for(lambda: record.handled() >= 6, 20, "six slow ticks")
    finally:
        ref.stop()
    with record.lock:
        spans, behind = list(record.spans), list(record.ticks_behind)
    assert max(behind) == 0, f"ticks piled up behind slow ones: {behind}"
    gaps = [nxt[0] - prev[1] for prev, nxt in itertools.pairwise(spans)]
    # the next tick comes an interval after the last one ended, not back to back from a backlog
    assert min(gaps) >= INTERVAL * 0.8, gaps


def test_a_tick_that_raises_is_logged_and_the_actor_goes_on_ticking() -> None:
    record = _Record()
    ref = _Slow.start(record, fail_first=True)
    try:
        wait_for(lambda: record.handled() >= 3, 10, "ticks after the failed one")
        assert ref.is_alive()
    finally:
        ref.stop()
