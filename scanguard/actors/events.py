"""The EventBus actor: delivers committed events to subscribers and logs each as one structured line."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from scanguard.actors.liveness import Answering
from scanguard.records import Event

log = structlog.get_logger("scanguard.events")
Subscriber = Callable[[Event], None]
_RESERVED = frozenset({"event", "level", "timestamp", "instance"})


@dataclass(frozen=True, slots=True)
class Publish:
    """Events that have committed, in commit order."""

    events: tuple[Event, ...]
    remote: bool = False  # another instance's, heard by the listener: delivered, not logged a second time


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Add a callback; the reply is its subscription id."""

    callback: Subscriber


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Remove a callback by its subscription id."""

    subscription: int


class EventBus(Answering):
    """Owns the subscriber list; publishing happens after commit (the events table is the outbox)."""

    def __init__(self) -> None:
        super().__init__()
        self._subscribers: dict[int, Subscriber] = {}
        self._ids = itertools.count(1)

    def on_receive(self, message: Any) -> Any:
        match message:
            case Publish(events, remote):
                for event in events:
                    self._deliver(event, log_it=not remote)
                return None
            case Subscribe(callback):
                sid = next(self._ids)
                self._subscribers[sid] = callback
                return sid
            case Unsubscribe(sid):
                self._subscribers.pop(sid, None)
                return None
        return super().on_receive(message)

    def _deliver(self, event: Event, *, log_it: bool = True) -> None:
        if log_it:
            ids = {"event_id": event.id, "job_id": event.job_id, "library_id": event.library_id}
            # the data's own keys stand beside the ids on the one log line, unless they would clash with them
            fields = {k: v for k, v in event.data.items() if k not in _RESERVED and k not in ids}
            log.info(event.kind, **ids, instance=event.instance, **fields)
        for sid, callback in list(self._subscribers.items()):
            try:
                callback(event)
            except Exception:  # a host callback must not take the bus down
                log.exception("events.subscriber_failed", subscription=sid, event_kind=event.kind)
