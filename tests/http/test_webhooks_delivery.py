"""Issue 10: signed webhooks from the outbox, across `kill -9` of `scanguard serve` and a restart; SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http.conftest import SCANGUARD, Api, ServerProcess, server_env, wait_until
from tests.support.db import db_rows
from tests.support.receiver import Receiver, closed_port_url
from tests.support.trees import build_tree, expected_media

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SECRET = "receiver-secret-0123"
DEAD_SECRET = "dead-receiver-secret"
SHUTDOWN_TIMEOUT = 10.0  # TEST_SAFEGUARDS
DELIVERY = {  # shrunk: attempts 50 ms apart, growing to 300 ms; five attempts, then dead
    "SCANGUARD_WEBHOOK_DELIVERY_POLL_INTERVAL": "0.2",
    "SCANGUARD_WEBHOOK_DELIVERY_RETRY_INTERVAL": "0.05",
    "SCANGUARD_WEBHOOK_DELIVERY_MAX_RETRY_INTERVAL": "0.3",
    "SCANGUARD_WEBHOOK_DELIVERY_MAX_ATTEMPTS": "5",
    "SCANGUARD_WEBHOOK_DELIVERY_TIMEOUT": "2",
}
SLOW_SCAN = {"SCANGUARD_SCAN_BATCH_SIZE": "2"}
SUBSCRIBED = ("job.", "library.")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real receiver on 127.0.0.1 that answers 500 to the first three deliveries, then 204."""
    server = Receiver(fail_first=3)
    yield server
    server.close()


def _subscribed_events(url: str) -> list[tuple[int, str]]:
    rows = db_rows(url, "SELECT id, kind FROM events ORDER BY id")
    return [(int(i), str(k)) for i, k in rows if str(k).startswith(SUBSCRIBED)]


def _webhook(api: Api, name: str) -> dict[str, Any]:
    hooks = {h["name"]: h for h in api.get("/api/admin/webhooks").json["webhooks"]}
    return dict(hooks[name])


def test_across_kill_9_and_restart_every_job_and_library_event_arrives_signed_in_order_and_sigterm_still_exits_0(
    tmp_path: Path,
    db_url: str,
    receiver: Receiver,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
) -> None:
    """At least once and in order of first delivery, signed, only subscribed kinds; a webhook at a closed port
    holds back neither the receiver nor the scan; SIGTERM exits 0 in time while it still fails."""
    tree = tmp_path / "media"
    build_tree(tree, 2500, 40)
    hooks = [
        {"url": receiver.url, "secret": SECRET, "kinds": list(SUBSCRIBED)},
        {
            "name": "nobody-home",
            "url": closed_port_url(),
            "secret": DEAD_SECRET,
            "kinds": ["job.", "library.", "watchdog.", "alert."],
        },
    ]
    env = {**SLOW_SCAN, **DELIVERY, "SCANGUARD_WEBHOOKS": json.dumps(hooks)}

    first = start_server(db_url, env=env)
    api = api_for(first)
    library = api.post("/api/admin/libraries", json={"path": str(tree)}).json["library"]["id"]
    job_id = api.post(f"/api/admin/scanner/safe/start/{library}").json["job"]["id"]
    started = _subscribed_events(db_url)
    receiver.wait_accepted({i for i, _ in started}, timeout=30)  # delivered through the first three 500s
    wait_until(
        lambda: api.get(f"/api/admin/scanner/jobs/{job_id}").json["job"]["files_processed"] >= 200,
        30,
        "the scan to commit a few batches",
    )
    first.kill()
    assert db_rows(db_url, f"SELECT status FROM scan_jobs WHERE id = {job_id}")[0][0] == "running"

    second = start_server(db_url, env=env)
    api = api_for(second)
    assert api.post(f"/api/admin/scanner/safe/resume/{job_id}").status == 200
    done = api.wait_job(job_id, ("completed", "failed", "paused"), timeout=120)
    assert done["status"] == "completed", done
    assert api.all_files(library) == expected_media(tree), "the dead receiver held the scan back"

    expected = _subscribed_events(db_url)
    kinds = [k for _, k in expected]
    assert kinds[:2] == ["library.added", "job.started"]
    assert "job.paused" in kinds, kinds
    assert kinds[-2:] == ["job.resumed", "job.completed"], kinds
    _assert_each_arrived_signed_in_order(db_url, receiver, expected)
    _assert_the_webhooks_route_and_metrics(db_url, api, receiver, len(expected))
    _sigterm_while_the_dead_receiver_fails(tmp_path, api, second)


def test_after_kill_9_the_restarted_service_takes_the_dead_process_s_webhook_cursor_at_once(
    tmp_path: Path,
    db_url: str,
    receiver: Receiver,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
) -> None:
    """A dead process on this host holds no lease (the one orphan rule): with a 60 s lease, the restarted
    service delivers within seconds of its start, in order, none lost — not after the lease expires."""
    hooks = [{"url": receiver.url, "secret": SECRET, "kinds": ["library."]}]
    env = {**DELIVERY, "SCANGUARD_SAFEGUARDS_LEASE_TTL": "60", "SCANGUARD_WEBHOOKS": json.dumps(hooks)}
    first = start_server(db_url, env=env)
    (tmp_path / "a").mkdir()
    assert api_for(first).post("/api/admin/libraries", json={"path": str(tmp_path / "a")}).status == 201
    receiver.wait_accepted({i for i, _ in _subscribed_events(db_url)}, timeout=30)  # through three 500s
    first.kill()
    (holder,) = db_rows(db_url, "SELECT owner FROM webhook_cursors")[0]
    assert holder is not None, "the killed process still holds the cursor's lease in the database"

    restarted = time.monotonic()
    second = start_server(db_url, env=env)
    (tmp_path / "b").mkdir()
    assert api_for(second).post("/api/admin/libraries", json={"path": str(tmp_path / "b")}).status == 201
    expected = [i for i, _ in _subscribed_events(db_url)]
    assert len(expected) == 2
    accepted = receiver.wait_accepted(set(expected), timeout=15)  # a quarter of the lease, start-up included
    took = time.monotonic() - restarted
    first_seen = list(dict.fromkeys(d.event["id"] for d in accepted))  # at least once: a repeat is allowed
    assert first_seen == expected, "in order, none lost"
    assert "webhook.claimed" in second.log()
    print(f"delivered {took:.2f}s after the restart began (lease 60 s)")


def _assert_each_arrived_signed_in_order(
    db_url: str, receiver: Receiver, expected: list[tuple[int, str]]
) -> None:
    # the lease of the killed process's cursor expires (lease_ttl), then the restarted one goes on
    accepted = receiver.wait_accepted({i for i, _ in expected}, timeout=60)

    first_seen: list[int] = []
    for delivery in accepted:
        if delivery.event["id"] not in first_seen:
            first_seen.append(delivery.event["id"])
    assert first_seen == [i for i, _ in expected], "each event at least once, in order of first delivery"
    assert [d.status for d in receiver.deliveries[:4]] == [500, 500, 500, 204]
    for delivery in receiver.deliveries:
        assert delivery.signed_with(SECRET), delivery.headers
        assert not delivery.signed_with(DEAD_SECRET)
        assert delivery.headers["X-Scanguard-Event-Id"] == str(delivery.event["id"])
        assert delivery.headers["X-Scanguard-Signature"].startswith("sha256=")
        assert set(delivery.event) == {"id", "at", "kind", "library_id", "job_id", "instance", "data"}
    stored = {int(i): str(k) for i, k in db_rows(db_url, "SELECT id, kind FROM events")}
    assert all(stored[d.event["id"]] == d.event["kind"] for d in accepted)
    unsubscribed = {k for k in stored.values() if not k.startswith(SUBSCRIBED)}
    assert {"watchdog.orphan_found", "orphan.adopted"} <= unsubscribed, unsubscribed
    assert not [d for d in receiver.deliveries if not d.event["kind"].startswith(SUBSCRIBED)]


def _assert_the_webhooks_route_and_metrics(db_url: str, api: Api, receiver: Receiver, expected: int) -> None:
    # the receiver has the last event once its 2xx is sent; the cursor moves when that answer is read
    good = wait_until(
        lambda: (h := _webhook(api, receiver.url))["lag"] == 0 and h, 30, "the cursor to catch up"
    )
    assert (good["lag"], good["dead"], good["kinds"]) == (0, 0, list(SUBSCRIBED))
    assert good["delivered"] >= expected
    assert good["failed_attempts"] >= 3
    assert good["last_success_at"]
    assert good["last_error"] == "HTTP 500 Internal Server Error"
    # its first delivery is given up after five attempts, about a second (after the killed one's lease)
    dead = wait_until(lambda: (h := _webhook(api, "nobody-home"))["dead"] >= 1 and h, 30, "a dead delivery")
    assert dead["delivered"] == 0, dead
    assert dead["dead_deliveries"][0]["attempts"] == 5
    text = api.get("/api/admin/webhooks").text
    assert SECRET not in text
    assert DEAD_SECRET not in text
    assert '"secret"' not in text
    alerts = db_rows(db_url, "SELECT data FROM events WHERE kind = 'alert.webhook_failing'")
    assert alerts, "each dead delivery raises alert.webhook_failing"
    alert = alerts[0][0] if isinstance(alerts[0][0], dict) else json.loads(alerts[0][0])
    assert alert["webhook"] == "nobody-home"
    metrics = api.get("/metrics", token=None).text
    assert 'scanguard_webhook_deliveries_total{outcome="dead",webhook="nobody-home"}' in metrics
    assert f'scanguard_webhook_deliveries_total{{outcome="delivered",webhook="{receiver.url}"}}' in metrics


def _sigterm_while_the_dead_receiver_fails(tmp_path: Path, api: Api, second: ServerProcess) -> None:
    # its backlog given up, nothing is left: its own failure alerts are passed over, not counted as lag
    dead = wait_until(lambda: (h := _webhook(api, "nobody-home"))["lag"] == 0 and h, 30, "an empty backlog")
    # new events for the dead receiver to fail on, then SIGTERM in the middle of its retries
    failed_before = dead["failed_attempts"]
    for n in range(3):  # about a second of failing attempts each
        (tmp_path / f"other{n}").mkdir()
        api.post("/api/admin/libraries", json={"path": str(tmp_path / f"other{n}")})
    wait_until(
        lambda: (h := _webhook(api, "nobody-home"))["lag"] > 0 and h["failed_attempts"] > failed_before,
        30,
        "the dead receiver to be failing on a new event",
    )
    signalled = time.monotonic()
    assert second.terminate(timeout=SHUTDOWN_TIMEOUT + 20) == 0
    took = time.monotonic() - signalled
    assert took <= SHUTDOWN_TIMEOUT, f"shutdown took {took:.1f}s"
    assert "runtime.stopped" in second.log()


def test_serve_with_a_bad_webhook_exits_1_naming_the_key_and_starts_nothing(tmp_path: Path) -> None:
    """No secret, a non-http URL, an empty kinds list: a clear error, no port, no database."""
    cases = {
        "SCANGUARD_WEBHOOKS[0].secret": [{"url": "http://127.0.0.1:9/x", "kinds": ["job."]}],
        "SCANGUARD_WEBHOOKS[0].url": [{"url": "ftp://example/x", "secret": "s", "kinds": ["job."]}],
        "SCANGUARD_WEBHOOKS[1].kinds": [
            {"url": "http://127.0.0.1:9/x", "secret": "s", "kinds": ["job."]},
            {"url": "https://example.com/y", "secret": "s", "kinds": []},
        ],
    }
    for key, hooks in cases.items():
        database = tmp_path / f"{abs(hash(key))}.db"
        env = server_env(tmp_path / "data", SCANGUARD_WEBHOOKS=json.dumps(hooks))
        proc = subprocess.run(
            [SCANGUARD, "serve", "--port", "0", "--database", f"sqlite:///{database}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1, proc
        assert key in proc.stderr, proc.stderr
        assert "listening on" not in proc.stderr + proc.stdout
        assert not database.exists(), "nothing started"
    assert signal.SIGTERM  # the module's other test covers the signal path
