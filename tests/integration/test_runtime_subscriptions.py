"""Unsubscribing answers in scanguard's terms: a busy bus is OperationTimeout, a stopping one ends it quietly."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pykka
import pytest

import scanguard
from scanguard.errors import OperationTimeout
from scanguard.records import Event
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(60)


def _hold_the_bus(rt: scanguard.Runtime, tmp_path: Path) -> tuple[threading.Event, threading.Event]:
    """A subscriber that keeps the bus's thread on the next event until released; (reached, release)."""
    reached, release = threading.Event(), threading.Event()

    def hold(_event: Event) -> None:
        reached.set()
        release.wait(30)

    rt.subscribe(hold)
    (tmp_path / "lib").mkdir()
    rt.add_library(tmp_path / "lib")  # its library.added event reaches `hold`
    assert reached.wait(10), "the subscriber never got the library.added event"
    return reached, release


def test_unsubscribing_from_a_bus_that_cannot_answer_in_time_is_operation_timeout(
    runtime_factory: Callable[..., scanguard.Runtime],
    make_config: Callable[..., scanguard.Config],
    tmp_path: Path,
) -> None:
    rt = runtime_factory(make_config(safeguards={"operation_timeout": 0.5}), passive=True)
    sid = rt.subscribe(lambda _e: None)
    _reached, release = _hold_the_bus(rt, tmp_path)
    try:
        with pytest.raises(OperationTimeout) as timed_out:
            rt.unsubscribe(sid)
        assert timed_out.value.details["operation"] == "unsubscribe"
    finally:
        release.set()


def test_unsubscribing_while_the_bus_stops_ends_quietly_not_with_pykkas_actor_dead_error(
    runtime_factory: Callable[..., scanguard.Runtime], tmp_path: Path
) -> None:
    rt = runtime_factory(passive=True)
    sid = rt.subscribe(lambda _e: None)
    _reached, release = _hold_the_bus(rt, tmp_path)
    bus = pykka.ActorRegistry.get_by_class_name("EventBus")[0]
    bus.stop(block=False)  # queued behind the held event: the bus is still alive when we ask
    unsubscribed: list[BaseException | None] = []

    def unsubscribe() -> None:
        try:
            rt.unsubscribe(sid)
            unsubscribed.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test looks at whatever escaped
            unsubscribed.append(exc)

    asker = threading.Thread(target=unsubscribe)
    asker.start()
    try:
        # the ask is queued behind the stop: once released, the bus stops and fails what is still queued
        wait_for(lambda: bus.actor_inbox.qsize() >= 2, 10, "the unsubscribe queued behind the stop")
    finally:
        release.set()
    asker.join(15)
    assert not asker.is_alive()
    assert unsubscribed == [None], f"unsubscribe raised {unsubscribed[0]!r}"
