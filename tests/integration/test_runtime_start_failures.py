"""A start that fails at any step stops exactly what it had started: no actor, thread, pool, connection,
listener or `instances` row outlives it, and the runtime says it is not running."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pykka
import pytest

import scanguard
from scanguard import system as system_module
from scanguard.actors.cleanup import CleanupScheduler
from scanguard.actors.events import EventBus
from scanguard.actors.health import HealthChecker
from scanguard.actors.state_validator import StateValidator
from scanguard.actors.supervisor import Supervisor
from scanguard.actors.watchdog import Watchdog
from scanguard.actors.webhooks import Deliveries, DeliveryParts, WebhookDelivery
from scanguard.actors.workers import WorkerPoolActor
from scanguard.errors import StoreUnavailable
from scanguard.processing.pool import FilePool
from scanguard.store.notify import EventListener
from scanguard.webhooks.sender import Sender
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


class Injected(RuntimeError):
    """The failure a test injects into one step of the start."""


class _Kept(scanguard.Runtime):
    """A Runtime that lets the test look at itself after Runtime.start raised."""

    made: list[scanguard.Runtime] = []  # noqa: RUF012 - reset by the fixture

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _Kept.made.append(self)


class _ClosedPool(FilePool):
    """The real pool, noting whether it was closed."""

    closed: list[FilePool] = []  # noqa: RUF012 - reset by the fixture

    def close(self, timeout: float) -> None:
        _ClosedPool.closed.append(self)
        super().close(timeout)


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise Injected("this step of the start failed")


def _boot_sweep_fails(self: Watchdog, reason: str) -> Any:
    if reason == "boot":
        raise StoreUnavailable("boot_recovery: the database is unavailable")
    return Watchdog._sweep(self, reason)  # never reached in these tests


# stage → (what the test patches, the error Runtime.start raises)
STAGES: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], type[BaseException]]] = {
    "workers": (lambda mp: mp.setattr(WorkerPoolActor, "start", _refuse), Injected),
    "supervisor": (lambda mp: mp.setattr(Supervisor, "start", _refuse), Injected),
    "watchdog": (lambda mp: mp.setattr(Watchdog, "start", _refuse), Injected),
    "boot_sweep": (lambda mp: mp.setattr(Watchdog, "_sweep", _boot_sweep_fails), StoreUnavailable),
    "validator": (lambda mp: mp.setattr(StateValidator, "start", _refuse), Injected),
    "cleanup": (lambda mp: mp.setattr(CleanupScheduler, "start", _refuse), Injected),
    "health": (lambda mp: mp.setattr(HealthChecker, "start", _refuse), Injected),
}


@dataclass(frozen=True, slots=True)
class Baseline:
    """What ran before the start: its threads and child processes."""

    threads: set[threading.Thread]
    children: set[int]


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture
def baseline() -> Iterator[Baseline]:
    """What runs before the start; no actor may be running yet."""
    _Kept.made.clear()
    _ClosedPool.closed.clear()
    assert pykka.ActorRegistry.get_all() == []
    yield Baseline(set(threading.enumerate()), _children())
    pykka.ActorRegistry.stop_all()  # a failing test must not leak its actors into the next one


def _nothing_left(url: str, baseline: Baseline, db_query: Callable[..., Any]) -> None:
    rt = _Kept.made[-1]
    before = baseline.threads
    assert rt.running is False
    assert pykka.ActorRegistry.get_all() == [], "every actor the start began is stopped"
    assert _children() <= baseline.children, "no process the start began is left"
    wait_for(
        lambda: not [t for t in set(threading.enumerate()) - before if t.is_alive()],
        10,
        "the threads the start began to end: "
        + ", ".join(t.name for t in set(threading.enumerate()) - before),
    )
    assert db_query(url, "SELECT COUNT(*) FROM instances") == [(0,)], "no row of a live-looking instance"
    if url.startswith("postgresql"):
        others = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        wait_for(lambda: db_query(url, others) == [(0,)], 10, "the start's connections to close")
    with pytest.raises(scanguard.RuntimeStopped):
        rt.list_libraries()


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_start_failing_at_any_step_leaves_no_actor_thread_pool_connection_or_instance_row(
    stage: str,
    db_url: str,
    make_config: Callable[..., scanguard.Config],
    monkeypatch: pytest.MonkeyPatch,
    baseline: Baseline,
    db_query: Callable[..., Any],
) -> None:
    patch, raised = STAGES[stage]
    scanguard.Runtime.start(make_config()).stop()  # the schema exists; the failing start finds it ready
    patch(monkeypatch)
    monkeypatch.setattr(system_module, "FilePool", _ClosedPool)

    with pytest.raises(raised):
        _Kept.start(make_config(), processors=["audio_tags"])

    _nothing_left(db_url, baseline, db_query)
    assert len(_ClosedPool.closed) >= 1, "the worker pool was closed, even when its actor never started"


@pytest.mark.postgres
def test_a_start_whose_event_listener_fails_leaves_nothing_behind(
    pg_url: str,
    make_config: Callable[..., scanguard.Config],
    monkeypatch: pytest.MonkeyPatch,
    baseline: Baseline,
    db_query: Callable[..., Any],
) -> None:
    scanguard.Runtime.start(make_config()).stop()
    monkeypatch.setattr(EventListener, "start", _refuse)
    with pytest.raises(Injected):
        _Kept.start(make_config())
    _nothing_left(pg_url, baseline, db_query)


def test_a_webhook_config_that_fails_only_when_deliveries_start_leaves_nothing_behind(
    db_url: str,
    make_config: Callable[..., scanguard.Config],
    baseline: Baseline,
    db_query: Callable[..., Any],
) -> None:
    """Deliveries on a host loop that does not run: found only once the deliveries start."""
    scanguard.Runtime.start(make_config()).stop()
    idle = asyncio.new_event_loop()
    try:
        hooks = [{"url": "http://127.0.0.1:9/hook", "secret": "s3cret", "kinds": ["job."]}]
        with pytest.raises(scanguard.ConfigError, match="running event loop"):
            _Kept.start(make_config(), webhooks=hooks, loop=idle)
    finally:
        idle.close()
    _nothing_left(db_url, baseline, db_query)


def test_deliveries_that_cannot_subscribe_stop_the_actors_they_started_and_close_their_sender(
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    rt = runtime_factory(make_config())
    config = rt.config.replace(
        webhooks=[{"url": "http://127.0.0.1:9/hook", "secret": "s", "kinds": ["job."]}]
    )
    gone = EventBus.start()
    gone.stop()  # the bus died under the start: the last step, subscribing, fails
    loops_before = {t for t in threading.enumerate() if t.name == "webhook-loop"}
    sender = Sender(config.webhook_delivery)

    with pytest.raises(pykka.ActorDeadError):
        Deliveries.start(DeliveryParts(config, rt.store, sender, rt.metrics), gone)

    assert pykka.ActorRegistry.get_by_class(WebhookDelivery) == []
    loops = {t for t in threading.enumerate() if t.name == "webhook-loop"} - loops_before
    wait_for(lambda: not any(t.is_alive() for t in loops), 10, "the sender's loop thread to end")
