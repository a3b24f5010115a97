"""What this instance does with the events other instances commit (heard through PostgreSQL's NOTIFY):
publish them on its own bus, check its live scans against another's job change at once, and take over at
once a scan that a clean shutdown elsewhere handed over."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from scanguard.actors.events import Publish
from scanguard.actors.state_validator import Validate
from scanguard.actors.watchdog import Sweep
from scanguard.records import Event

REMOTE_CHANGES = frozenset(
    {
        "job.paused",
        "job.resumed",
        "job.deleted",
        "job.failed",
        "job.completed",
        "orphan.adopted",
        "library.removed",
    }
)
"""Another instance's events after which this one's live scans are checked against the database at once."""

Ref = Callable[[], "pykka.ActorRef[Any] | None"]


@dataclass(frozen=True, slots=True)
class RemoteEvents:
    """Owns the policy for events heard from other instances (the listener calls it with each batch)."""

    bus: pykka.ActorRef[Any]
    validator: Ref  # looked up per batch: the safeguards start after the listener
    watchdog: Ref
    auto_resume_orphans: bool

    def __call__(self, events: tuple[Event, ...]) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.bus.tell(Publish(events, remote=True))
            if {e.kind for e in events} & REMOTE_CHANGES and (validator := self.validator()) is not None:
                validator.tell(Validate("remote_event"))
            handed = any(e.kind == "job.paused" and e.data.get("reason") == "shutdown" for e in events)
            if handed and self.auto_resume_orphans and (watchdog := self.watchdog()) is not None:
                watchdog.tell(Sweep("handover"))
