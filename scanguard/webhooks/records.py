"""The plain values of webhook delivery: a position in delivery order, a lease, a webhook's state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scanguard.records import Event, iso

Position = tuple[int, int]
"""Where a cursor stands: (the event's transaction id on PostgreSQL, else 0; the event id)."""


@dataclass(frozen=True, slots=True)
class Lease:
    """This instance's hold on one webhook's cursor: the fencing token, and where the cursor stands."""

    token: int
    position: Position


@dataclass(frozen=True, slots=True)
class Pending:
    """An event waiting for a webhook, with its place in delivery order."""

    event: Event
    position: Position


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery given up after its last attempt."""

    event_id: int
    kind: str
    attempts: int
    error: str | None
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "attempts": self.attempts,
            "error": self.error,
            "at": iso(self.at),
        }


@dataclass(frozen=True, slots=True)
class WebhookState:
    """One webhook's delivery state as the database holds it (never its secret)."""

    name: str
    cursor: int
    lag: int
    owner: str | None
    lease_expires_at: datetime | None
    delivered: int
    failed_attempts: int
    dead: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    dead_letters: tuple[DeadLetter, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cursor": self.cursor,
            "lag": self.lag,
            "owner": self.owner,
            "lease_expires_at": iso(self.lease_expires_at),
            "delivered": self.delivered,
            "failed_attempts": self.failed_attempts,
            "dead": self.dead,
            "last_success_at": iso(self.last_success_at),
            "last_failure_at": iso(self.last_failure_at),
            "last_error": self.last_error,
            "dead_deliveries": [d.to_dict() for d in self.dead_letters],
        }
