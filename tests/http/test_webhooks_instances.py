"""Issue 10 with several instances on one PostgreSQL: each event delivered by one of them; takeover."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import scanguard
from tests.http.conftest import Api, ServerProcess, wait_until
from tests.support.db import _pg_dsn, db_rows
from tests.support.receiver import Receiver
from tests.support.trees import build_tree

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

SECRET = "instances-secret"
DELIVERY = {"poll_interval": 0.2, "retry_interval": 0.05, "max_retry_interval": 0.3, "max_attempts": 5}
KINDS = ("job.", "library.")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _subscribed(pg_url: str) -> list[int]:
    """The subscribed events' ids in delivery order on PostgreSQL: (inserting transaction, id)."""
    rows = db_rows(pg_url, "SELECT id, kind, tx FROM events ORDER BY tx, id")
    return [int(i) for i, kind, _tx in rows if str(kind).startswith(KINDS)]


def test_two_runtimes_on_postgresql_deliver_each_event_once_between_them(
    pg_url: str,
    tmp_path: Path,
    receiver: Receiver,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """Both instances record events while scanning; one holds the cursor; none is sent twice."""
    hooks: list[dict[str, Any]] = [{"url": receiver.url, "secret": SECRET, "kinds": list(KINDS)}]
    config = make_config(webhook_delivery=DELIVERY)
    runtimes = [runtime_factory(config, webhooks=hooks) for _ in range(2)]
    assert runtimes[0].instance != runtimes[1].instance
    jobs = []
    for n, rt in enumerate(runtimes):
        root = tmp_path / f"lib{n}"
        build_tree(root, 300, 0, hidden=False, symlinks=False)
        jobs.append((rt, rt.start_scan(rt.add_library(root).id)))
    for rt, job in jobs:
        assert rt.wait_for_job(job.id, timeout=60).status == "completed"

    expected = _subscribed(pg_url)
    assert len(expected) == 6  # per instance: library.added, job.started, job.completed
    accepted = receiver.wait_accepted(set(expected), timeout=60)
    sent = collections.Counter(d.event["id"] for d in receiver.deliveries)
    assert [i for i, n in sent.items() if n > 1] == [], "an event delivered twice"
    assert [d.event["id"] for d in accepted] == expected, "in delivery order"
    assert all(d.signed_with(SECRET) for d in accepted)
    recorders = {d.event["instance"] for d in accepted}
    assert recorders == {rt.instance for rt in runtimes}, "both instances' events"
    wait_until(lambda: runtimes[0].webhooks()[0]["lag"] == 0, 10, "the cursor to move past the last one")
    states = [rt.webhooks()[0] for rt in runtimes]
    assert states[0]["owner"] == states[1]["owner"]
    assert states[0]["owner"] in recorders, "one instance holds the cursor"
    assert states[0]["delivered"] == len(expected)


def test_a_killed_instance_s_webhook_is_taken_over_by_a_live_one_on_the_same_host_at_once(
    pg_url: str,
    tmp_path: Path,
    receiver: Receiver,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """kill -9 of the serving instance that holds the cursor; a runtime started beside it delivers on."""
    hooks: list[dict[str, Any]] = [{"url": receiver.url, "secret": SECRET, "kinds": list(KINDS)}]
    env = {f"SCANGUARD_WEBHOOK_DELIVERY_{k.upper()}": str(v) for k, v in DELIVERY.items()}
    server = start_server(pg_url, env={**env, "SCANGUARD_WEBHOOKS": json.dumps(hooks)})
    api = api_for(server)
    (tmp_path / "a").mkdir()
    api.post("/api/admin/libraries", json={"path": str(tmp_path / "a")})
    receiver.wait_accepted(set(_subscribed(pg_url)), timeout=30)
    state = wait_until(
        lambda: (h := api.get("/api/admin/webhooks").json["webhooks"][0])["lag"] == 0 and h,
        10,
        "the cursor to move past the delivered event",
    )
    holder = state["owner"]
    assert holder is not None

    live = runtime_factory(make_config(webhook_delivery=DELIVERY), webhooks=hooks)
    server.kill()
    (tmp_path / "b").mkdir()
    live.add_library(tmp_path / "b")  # recorded while the dead instance's lease is unexpired: it holds none

    receiver.wait_accepted(set(_subscribed(pg_url)), timeout=30)
    state = wait_until(
        lambda: (s := live.webhooks()[0])["owner"] == live.instance and s["lag"] == 0 and s,
        10,
        "the live instance to hold the cursor, past the last event",
    )
    assert state["owner"] != holder
    assert [d.event["kind"] for d in receiver.accepted()] == ["library.added", "library.added"]


def test_an_event_whose_transaction_is_still_open_is_never_passed_over(
    pg_url: str,
    tmp_path: Path,
    receiver: Receiver,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """An event inserted by a transaction that commits after a later one: both arrive, the older first.

    By id alone the cursor would pass the open transaction's event the moment the later one is seen.
    """
    hooks: list[dict[str, Any]] = [{"url": receiver.url, "secret": SECRET, "kinds": list(KINDS)}]
    rt = runtime_factory(make_config(webhook_delivery=DELIVERY), webhooks=hooks)
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(_pg_dsn(pg_url), timeout=10))
    try:
        held = loop.run_until_complete(_insert_held_event(conn))
        (tmp_path / "later").mkdir()
        rt.add_library(tmp_path / "later")  # committed while the held transaction is still open
        with pytest.raises(AssertionError, match="fewer than 1 POSTs"):
            receiver.wait_posts(1, timeout=1.0)  # five polls: nothing may go out past the open transaction
        loop.run_until_complete(conn.execute("COMMIT"))
    finally:
        loop.run_until_complete(conn.close())
        loop.close()
    accepted = receiver.wait_accepted(set(_subscribed(pg_url)), timeout=30)
    assert [d.event["kind"] for d in accepted] == ["job.held", "library.added"]
    assert accepted[0].event["id"] == held


async def _insert_held_event(conn: Any) -> int:
    await conn.execute("BEGIN")
    return int(
        await conn.fetchval(
            "INSERT INTO events (at, kind, data) VALUES (now(), 'job.held', '{}') RETURNING id"
        )
    )
