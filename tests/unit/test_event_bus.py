"""The event bus delivers every committed event, whatever its data holds, and survives a failing subscriber."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from scanguard.actors.events import EventBus, Publish, Subscribe
from scanguard.records import Event

pytestmark = pytest.mark.timeout(10)


def test_events_reach_subscribers_in_order_even_with_data_named_like_log_fields() -> None:
    """Data keys such as `event` or `level` cannot break the log line or stop delivery; a subscriber
    that raises does not keep the next one from its events."""
    bus = EventBus.start()
    seen: list[int] = []
    done = threading.Event()

    def failing(_: Event) -> None:
        raise RuntimeError("host bug")

    def collect(event: Event) -> None:
        seen.append(event.id)
        if len(seen) == 2:
            done.set()

    try:
        bus.ask(Subscribe(failing))
        bus.ask(Subscribe(collect))
        now = datetime.now(UTC)
        odd = {"event": "x", "level": "y", "timestamp": "z", "job_id": 99, "reason": "user"}
        bus.tell(
            Publish((Event(1, now, "job.paused", 1, 2, "me", odd), Event(2, now, "job.resumed", 1, 2, "me")))
        )
        assert done.wait(5)
        assert seen == [1, 2]
    finally:
        bus.stop()
