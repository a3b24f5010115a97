"""DESIGN §8: on PostgreSQL each runtime hears the others' committed events (LISTEN/NOTIFY): its
subscribers get them, and its state validator acts on them at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import scanguard
from tests.support.trees import build_tree
from tests.support.waiting import QUIET_SAFEGUARDS, GatedFileSystem, wait_for

pytestmark = [pytest.mark.timeout(60), pytest.mark.postgres]


def test_a_pause_made_by_another_runtime_stops_this_ones_held_scan_at_once_through_its_event(
    pg_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """One runtime's scan is held between batches (no batch would fence it); another runtime pauses the
    job: the first one's subscribers get the remote job.paused, and its validator (periodic pass off)
    stops the live scan within a second."""
    root = tmp_path / "lib"
    build_tree(root, 300, 0)
    gate = GatedFileSystem(root / "Artist 001")
    quiet = make_config(safeguards=QUIET_SAFEGUARDS, scan={"batch_size": 5})
    owner = runtime_factory(quiet, fs=gate)
    other = runtime_factory(quiet)
    heard: list[scanguard.Event] = []
    paused = threading.Event()

    def on_event(event: scanguard.Event) -> None:
        heard.append(event)
        if event.kind == "job.paused":
            paused.set()

    owner.subscribe(on_event)
    job = owner.start_scan(owner.add_library(root).id)
    try:
        assert gate.reached.wait(30)
        assert owner.live_scans().keys() == {job.id}
        other.pause_scan(job.id)
        assert paused.wait(5), "the other runtime's pause reached this runtime's subscribers"
        event = next(e for e in heard if e.kind == "job.paused")
        assert (event.instance, event.job_id) == (other.instance, job.id)
        wait_for(lambda: not owner.live_scans(), 1.0, "the validator to stop the held scan", interval=0.02)
    finally:
        gate.release.set()
    assert owner.get_job(job.id).status == "paused"
