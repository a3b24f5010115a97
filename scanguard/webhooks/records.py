"""The plain values of webhook delivery: a position in delivery order, a lease, a webhook's state."""

from __future__ import annotations

from dataclasses import dataclass

from scanguard.records import Count, Event, Id, Record, Time

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
class DeadLetter(Record):
    """A delivery given up after its last attempt."""

    event_id: Id
    kind: str
    attempts: Count
    error: str | None
    at: Time


@dataclass(frozen=True, slots=True)
class WebhookState(Record):
    """One webhook's delivery state as the database holds it (never its secret)."""

    name: str
    cursor: Count
    lag: Count
    owner: str | None
    lease_expires_at: Time | None
    delivered: Count
    failed_attempts: Count
    dead: Count
    last_success_at: Time | None
    last_failure_at: Time | None
    last_error: str | None
    dead_deliveries: tuple[DeadLetter, ...] = ()
