"""Issue 10, the store side: a webhook's cursor is claimed under a lease, and a stale holder moves nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import scanguard
from scanguard.actors.store import StoreActor, StoreClient
from scanguard.records import EventQuery
from scanguard.store.database import Database
from scanguard.store.reads import ListEvents, WebhookPending, WebhookStates
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(60)
HOOK = "hook"


@pytest.fixture
def stores(db_url: str, make_config: Callable[..., scanguard.Config]) -> Iterator[tuple[Any, Any]]:
    """Two instances' stores on one database, with a lease of 0.3 s."""
    config = make_config(safeguards={"lease_ttl": 0.3})
    clients: list[StoreClient] = []
    refs = []
    try:
        for n in "ab":  # one after the other: the first migrates the new database
            database = Database(config, f"instance-{n}")
            refs.append(StoreActor.start(database))
            clients.append(StoreClient(config, database, refs[-1]))
            clients[-1].ping()
        yield clients[0], clients[1]
    finally:
        for ref in refs:
            ref.stop()
        for client in clients:
            client.database.dispose()


def test_one_instance_holds_the_cursor_until_its_lease_expires_and_then_it_is_fenced(
    stores: tuple[Any, Any],
) -> None:
    a, b = stores
    a.ensure_webhook(HOOK)
    b.ensure_webhook(HOOK)  # the second instance finds the row there
    event = a.record_event("job.started", None, None)

    lease = a.claim_webhook(HOOK)
    assert lease is not None
    assert lease.position == (0, 0), "a new cursor starts at the newest event: none yet"
    assert b.claim_webhook(HOOK) is None, "held by a"
    assert a.claim_webhook(HOOK).token == lease.token, "renewing keeps the token"

    (pending,) = a.read(WebhookPending(lease.position, ("job.",), 10))
    assert pending.event.id == event.id
    assert a.webhook_delivered(HOOK, lease.token, pending.position)

    taken = wait_for(lambda: b.claim_webhook(HOOK), 10, "a's lease to expire")
    assert taken.token == lease.token + 1
    assert taken.position == pending.position, "b goes on from a's cursor"
    later = a.record_event("job.completed", None, None)
    (next_one,) = b.read(WebhookPending(taken.position, ("job.",), 10))
    assert next_one.event.id == later.id

    assert not a.webhook_delivered(HOOK, lease.token, next_one.position), "a is fenced"
    assert not a.webhook_dead(next_one, HOOK, lease.token, 3, "HTTP 500")
    assert a.claim_webhook(HOOK) is None, "b holds it now"
    (state,) = b.read(WebhookStates(((HOOK, ("job.",)),)))
    assert (state.cursor, state.lag, state.delivered, state.dead, state.owner) == (
        event.id,
        1,
        1,
        0,
        "instance-b",
    )

    assert b.webhook_dead(next_one, HOOK, taken.token, 3, "HTTP 500")
    (state,) = b.read(WebhookStates(((HOOK, ("job.",)),)))
    assert (state.cursor, state.lag, state.dead) == (later.id, 0, 1)
    assert [(d.event_id, d.attempts, d.error) for d in state.dead_deliveries] == [(later.id, 3, "HTTP 500")]
    alerts = b.read(ListEvents(EventQuery(kinds=("alert.webhook_failing",))))
    assert [(e.data["webhook"], e.data["event_id"]) for e in alerts] == [(HOOK, later.id)]
