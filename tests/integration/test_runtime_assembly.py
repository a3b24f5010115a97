"""The runtime is assembled once (scanguard.system): a stop runs the stops of what started, in the reverse
order of starting; a passive runtime has the store and the bus but no system to run scans or safeguards."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pykka
import pytest

import scanguard
from scanguard import system as system_module

pytestmark = pytest.mark.timeout(60)


def test_a_stop_stops_every_actor_in_the_reverse_order_of_starting(
    runtime_factory: Callable[..., scanguard.Runtime],
    make_config: Callable[..., scanguard.Config],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert pykka.ActorRegistry.get_all() == []
    stopped: list[str] = []
    stop_actors = system_module.stop_actors

    def noted(refs: Iterable[pykka.ActorRef[Any]], timeout: float) -> None:
        refs = list(refs)
        stopped.extend(ref.actor_class.__name__ for ref in refs if ref.is_alive())
        stop_actors(refs, timeout)

    monkeypatch.setattr(system_module, "stop_actors", noted)
    rt = runtime_factory(make_config(watch={"enabled": True}), processors=["audio_tags"])
    started = [ref.actor_class.__name__ for ref in pykka.ActorRegistry.get_all()]
    rt.stop()

    assert started[:2] == ["EventBus", "StoreActor"]
    assert {"WorkerPoolActor", "Supervisor", "HealthChecker", "WatchKeeper"} <= set(started)
    assert stopped == started[::-1]
    assert pykka.ActorRegistry.get_all() == []


def test_a_passive_runtime_reads_but_has_no_system_for_scans_or_safeguards(
    runtime_factory: Callable[..., scanguard.Runtime], tmp_path: Path
) -> None:
    rt = runtime_factory(passive=True)
    library = rt.add_library(tmp_path)

    assert rt.running
    assert rt.list_libraries() == (library,)
    for call in (rt.sweep, rt.safeguard_status, lambda: rt.start_scan(library.id), lambda: rt.system):
        with pytest.raises(scanguard.RuntimeStopped):
            call()


def test_a_stopped_runtime_answers_runtime_stopped_and_stops_once(
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    rt = runtime_factory()
    rt.stop()
    rt.stop()  # nothing left to stop

    assert not rt.running
    for call in (rt.list_libraries, rt.sweep, lambda: rt.store, lambda: rt.system):
        with pytest.raises(scanguard.RuntimeStopped):
            call()
