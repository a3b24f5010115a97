"""Every illegal call raises its typed error and changes nothing in the database (issue 2, item 5)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import scanguard
from tests.support.db import snapshot
from tests.support.trees import build_tree, media_path
from tests.support.waiting import QUIET_SAFEGUARDS, ProcessorGate

pytestmark = pytest.mark.timeout(60)
UNKNOWN = 987_654


@dataclass
class World:
    """Four libraries: one with a completed job, one paused, one running (held), one whose root is gone."""

    rt: scanguard.Runtime
    url: str
    tmp: Path
    completed: scanguard.Job
    paused: scanguard.Job
    running: scanguard.Job
    gone_library: scanguard.Library
    lib_paths: list[Path]


@pytest.fixture
def world(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> Iterator[World]:
    paths = [tmp_path / f"lib{i}" for i in range(4)]
    for p in paths:
        build_tree(p, 30, 3)
    gate = ProcessorGate([media_path(12)])
    rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS), processor=gate)
    libs = [rt.add_library(p) for p in paths]
    try:
        completed = rt.start_scan(libs[0].id)
        _, release = gate.next_hit()
        release.set()
        assert rt.wait_for_job(completed.id, ("completed",), timeout=30).status == "completed"
        gate = ProcessorGate([media_path(12)])
        rt.stop()
        rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS), processor=gate)
        paused = rt.start_scan(libs[1].id)
        _, release = gate.next_hit()
        paused = rt.pause_scan(paused.id)
        release.set()
        gate.arm(media_path(12))  # the running one is held at the same path, in its own library
        running = rt.start_scan(libs[2].id)
        gate.next_hit()
        shutil.rmtree(paths[3])
        yield World(rt, db_url, tmp_path, completed, paused, running, libs[3], paths)
    finally:
        gate.open_all()


Case = tuple[str, Callable[[World], Any], type[scanguard.ScanguardError], dict[str, Any]]


def _case(
    name: str, call: Callable[[World], Any], error: type[scanguard.ScanguardError], **attrs: Any
) -> Case:
    return (name, call, error, attrs)


CASES = [
    _case("get unknown job", lambda w: w.rt.get_job(UNKNOWN), scanguard.NotFound),
    _case("get unknown library", lambda w: w.rt.get_library(UNKNOWN), scanguard.NotFound),
    _case("start unknown library", lambda w: w.rt.start_scan(UNKNOWN), scanguard.NotFound),
    _case("pause unknown job", lambda w: w.rt.pause_scan(UNKNOWN), scanguard.NotFound),
    _case("resume unknown job", lambda w: w.rt.resume_scan(UNKNOWN), scanguard.NotFound),
    _case("delete unknown job", lambda w: w.rt.delete_job(UNKNOWN), scanguard.NotFound),
    _case("remove unknown library", lambda w: w.rt.remove_library(UNKNOWN), scanguard.NotFound),
    _case("files of unknown library", lambda w: w.rt.list_files(UNKNOWN), scanguard.NotFound),
    _case(
        "pause a paused job",
        lambda w: w.rt.pause_scan(w.paused.id),
        scanguard.IllegalTransition,
        job_status="paused",
        action="pause",
    ),
    _case(
        "resume a running job",
        lambda w: w.rt.resume_scan(w.running.id),
        scanguard.IllegalTransition,
        job_status="running",
        action="resume",
    ),
    _case(
        "resume a completed job",
        lambda w: w.rt.resume_scan(w.completed.id),
        scanguard.IllegalTransition,
        job_status="completed",
        action="resume",
    ),
    _case(
        "pause a completed job",
        lambda w: w.rt.pause_scan(w.completed.id),
        scanguard.IllegalTransition,
        job_status="completed",
        action="pause",
    ),
    _case("start where a job runs", lambda w: w.rt.start_scan(w.running.library_id), scanguard.LibraryBusy),
    _case(
        "start where a job is paused", lambda w: w.rt.start_scan(w.paused.library_id), scanguard.LibraryBusy
    ),
    _case(
        "start on a vanished root",
        lambda w: w.rt.start_scan(w.gone_library.id),
        scanguard.LibraryRootUnavailable,
    ),
    _case("add a missing directory", lambda w: w.rt.add_library(w.tmp / "nope"), scanguard.NotFound),
    _case("add a file", lambda w: w.rt.add_library(w.lib_paths[0] / media_path(0)), scanguard.NotFound),
    _case("add an empty path", lambda w: w.rt.add_library(""), scanguard.BadRequest),
    _case("add with a bad kind", lambda w: w.rt.add_library(w.tmp, kind="bogus"), scanguard.BadRequest),
    _case("add a duplicate path", lambda w: w.rt.add_library(w.lib_paths[0]), scanguard.LibraryExists),
    _case(
        "add a duplicate spelled differently",
        lambda w: w.rt.add_library(f"{w.lib_paths[0]}/./"),
        scanguard.LibraryExists,
    ),
    _case("list jobs with a bad status", lambda w: w.rt.list_jobs(status="bogus"), scanguard.BadRequest),
]

BAD_IDS = [0, -1, "abc", True, None, 1.5, 2**63]
ID_CALLS = [
    "get_job",
    "pause_scan",
    "resume_scan",
    "delete_job",
    "start_scan",
    "get_library",
    "remove_library",
    "list_files",
]


def test_every_illegal_call_raises_its_typed_error_and_changes_nothing(world: World) -> None:
    """Unknown ids, illegal transitions, busy libraries, vanished roots, bad paths: typed, and no row moves."""
    for name, call, error, attrs in CASES:
        before = snapshot(world.url)
        with pytest.raises(error) as raised:
            call(world)
        assert type(raised.value) is error, name
        for attr, value in attrs.items():
            assert getattr(raised.value, attr) == value, (name, attr)
        if isinstance(raised.value, scanguard.LibraryBusy):
            active = {world.running.library_id: world.running.id, world.paused.library_id: world.paused.id}
            assert raised.value.job_id == active[raised.value.library_id], name
        assert raised.value.to_dict()["error"]["code"] == error.code, name
        assert snapshot(world.url) == before, f"{name}: the failed call changed the database"


def test_bad_ids_raise_bad_request_and_change_nothing(world: World) -> None:
    before = snapshot(world.url)
    for name in ID_CALLS:
        for bad in BAD_IDS:
            with pytest.raises(scanguard.BadRequest) as raised:
                getattr(world.rt, name)(bad)
            assert raised.value.status == 400, (name, bad)
    assert snapshot(world.url) == before
    # and the world is still usable: the held scan is running, the paused one resumable
    assert world.rt.get_job(world.running.id).status == "running"
    assert world.rt.get_job(world.paused.id).status == "paused"
