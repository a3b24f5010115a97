"""The awaitable API's bridge threads belong to one Runtime and end with it; waits hold none of them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import scanguard
from tests.support.waiting import QUIET_SAFEGUARDS, GatedFileSystem

pytestmark = pytest.mark.timeout(90)
WAITS = 48  # more than the 32 bridge threads of control operations
ANSWER_WITHIN = 10.0


def _bridge_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("scanguard-aio")}


async def _use_every_bridge(rt: scanguard.Runtime, folder: Path) -> None:
    """A control operation and a service call at once, so both kinds of bridge thread exist."""
    folder.mkdir()
    await asyncio.gather(rt.aio.add_library(str(folder)), rt.aio.check_health(), rt.aio.run_cleanup())


def test_each_runtime_has_bridge_threads_of_its_own_and_stopping_it_ends_them_not_the_others(
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    first = runtime_factory(make_config(database={"url": f"sqlite:///{tmp_path / 'first.db'}"}))
    second = runtime_factory(make_config(database={"url": f"sqlite:///{tmp_path / 'second.db'}"}))
    before = _bridge_threads()
    asyncio.run(_use_every_bridge(first, tmp_path / "a"))
    firsts = _bridge_threads() - before
    asyncio.run(_use_every_bridge(second, tmp_path / "b"))
    seconds = _bridge_threads() - before - firsts
    assert firsts, "the first runtime's calls ran on bridge threads"
    assert seconds, "the second runtime's calls ran on threads of its own, not the first one's"

    first.stop()

    assert not any(t.is_alive() for t in firsts), "stop() ends the runtime's bridge threads"
    assert all(t.is_alive() for t in seconds), "another runtime's bridge is untouched"
    (tmp_path / "c").mkdir()
    assert asyncio.run(second.aio.add_library(str(tmp_path / "c"))).id > 0
    with pytest.raises(scanguard.RuntimeStopped):
        asyncio.run(first.aio.add_library(str(tmp_path / "c")))
    second.stop()
    assert not any(t.is_alive() for t in _bridge_threads() - before)


def test_many_pending_waits_for_a_job_do_not_keep_control_operations_waiting(
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    held, other = tmp_path / "held", tmp_path / "other"
    (held / "sub").mkdir(parents=True)
    other.mkdir()
    gate = GatedFileSystem(held)  # the held library's scan waits at its root until released
    rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS), fs=gate)
    try:
        held_id, other_id = rt.add_library(held).id, rt.add_library(other).id
        job = rt.start_scan(held_id)
        assert gate.reached.wait(10), "the held scan is running"

        async def scenario() -> list[scanguard.Job]:
            waits = [asyncio.create_task(rt.aio.wait_for_job(job.id, timeout=60)) for _ in range(WAITS)]
            for _ in range(5):
                await asyncio.sleep(0)  # every wait has begun (on the old bridge: took a thread)
            assert not any(w.done() for w in waits)
            # a control operation answers at once although every wait is still pending
            started = await asyncio.wait_for(rt.aio.start_scan(other_id), ANSWER_WITHIN)
            assert started.library_id == other_id
            assert not any(w.done() for w in waits)
            paused = await asyncio.wait_for(rt.aio.pause_scan(job.id), ANSWER_WITHIN)
            assert paused.status == "paused"
            # and the pause wakes every wait
            return await asyncio.wait_for(asyncio.gather(*waits), ANSWER_WITHIN)

        woken = asyncio.run(scenario())
    finally:
        gate.release.set()
    assert {(j.id, j.status) for j in woken} == {(job.id, "paused")}
    assert len(woken) == WAITS
