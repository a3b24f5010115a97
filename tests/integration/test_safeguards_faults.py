"""Issue 3, items 6 and 7: a database fault before or after the commit of start, pause, resume or delete."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import scanguard
from scanguard import IllegalTransition, LibraryBusy, NotFound, OperationFailed
from tests.integration.safeguards_support import (
    QUIET_SAFEGUARDS,
    HangingFileSystem,
    assert_database_valid,
    indexed_paths,
    job_row,
    release_hung_walks,  # noqa: F401 - a fixture, used through pytestmark
    trail,
)
from tests.support.db import db_rows

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("release_hung_walks")]

OPERATIONS = {"start": "create_job", "pause": "pause_job", "resume": "resume_job", "delete": "delete_job"}
STAGES = ("before_commit", "after_commit")


class InjectedFault(RuntimeError):
    """What the fault hook raises: the database 'failed' at this point of the transaction."""


class FaultOnce:
    """A store fault hook that fails one operation at one stage, once."""

    def __init__(self, operation: str, stage: str) -> None:
        self.operation = operation
        self.stage = stage
        self.fired = threading.Event()

    def __call__(self, operation: str, stage: str) -> None:
        if operation == self.operation and stage == self.stage and not self.fired.is_set():
            self.fired.set()
            raise InjectedFault(f"injected fault in {operation} at {stage}")


# (state after the fault, what a retry of the same call does, the job's decisions in order)
EXPECTED: dict[tuple[str, str], tuple[tuple[str, str | None] | None, str, list[tuple[str, Any]]]] = {
    ("start", "before_commit"): (None, "ok", []),
    ("start", "after_commit"): (
        ("paused", "orphaned"),
        "busy",
        [("job.started", None), ("job.paused", "orphaned"), ("orphan.adopted", None)],
    ),
    ("pause", "before_commit"): (("running", None), "ok", [("job.started", None)]),
    ("pause", "after_commit"): (
        ("paused", "user"),
        "illegal",
        [("job.started", None), ("job.paused", "user"), ("validator.fixed", None)],
    ),
    ("resume", "before_commit"): (("paused", "user"), "ok", [("job.started", None), ("job.paused", "user")]),
    ("resume", "after_commit"): (
        ("paused", "orphaned"),
        "ok",
        [
            ("job.started", None),
            ("job.paused", "user"),
            ("job.resumed", None),
            ("job.paused", "orphaned"),
            ("orphan.adopted", None),
        ],
    ),
    ("delete", "before_commit"): (("running", None), "ok", [("job.started", None)]),
    ("delete", "after_commit"): (
        None,
        "gone",
        [("job.started", None), ("job.deleted", None), ("validator.fixed", None)],
    ),
}


def _memory_agrees_with_database(rt: scanguard.Runtime, url: str) -> None:
    """No running row without a live actor of this process, and no live actor without its running row."""
    live = rt.live_scans()
    running = {
        int(r[0]): int(r[1])
        for r in db_rows(url, "SELECT id, fencing_token FROM scan_jobs WHERE status = 'running'")
    }
    assert running == live, f"running rows {running} vs live actors {live}"


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_fault_before_or_after_commit_names_the_step_and_leaves_a_valid_database(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
    operation: str,
    stage: str,
) -> None:
    """OperationFailed(step=stage, rolled_back=stage is before_commit); valid rows; the work can go on."""
    root = tmp_path / "library"
    media_tree.build_tree(root, 30, n_other=4)
    expected = sorted(media_tree.expected_media(root))
    fs = HangingFileSystem(hang_on=[str(root / "Artist 000" / "Album 01")])
    rt = runtime_factory(
        make_config(safeguards=QUIET_SAFEGUARDS, scan={"batch_size": 5, "batch_seconds": 5}), fs=fs
    )
    library = rt.add_library(root)
    job_id = 0
    if operation != "start":
        job_id = rt.start_scan(library.id).id
        assert fs.entered.wait(10), "the scan is running, held mid-walk"
        if operation == "resume":
            rt.pause_scan(job_id)
    calls: dict[str, Callable[[], Any]] = {
        "start": lambda: rt.start_scan(library.id),
        "pause": lambda: rt.pause_scan(job_id),
        "resume": lambda: rt.resume_scan(job_id),
        "delete": lambda: rt.delete_job(job_id),
    }
    fault = FaultOnce(OPERATIONS[operation], stage)
    rt.store.set_fault_hook(fault)

    with pytest.raises(OperationFailed) as failed:
        calls[operation]()

    rt.store.set_fault_hook(None)
    assert fault.fired.is_set()
    assert failed.value.step == stage
    assert failed.value.rolled_back is (stage == "before_commit")
    assert failed.value.operation == OPERATIONS[operation]
    assert stage in str(failed.value)
    assert "injected fault" in str(failed.value.__cause__)  # chained for host code; never in the message

    rt.validate_state()
    _memory_agrees_with_database(rt, db_url)
    assert_database_valid(db_url)
    jobs = db_rows(db_url, f"SELECT id, status, pause_reason FROM scan_jobs WHERE library_id = {library.id}")
    state, retry, decisions = EXPECTED[(operation, stage)]
    if operation == "start":
        job_id = int(jobs[0][0]) if jobs else 0
    if state is None:
        assert jobs == []
    else:
        assert [(r[1], r[2]) for r in jobs] == [state]
    if job_id:
        assert trail(db_url, job_id) == decisions

    # the same call again: it succeeds, or is refused because the first attempt's commit stands
    _retry(calls[operation], retry, job_id)
    rt.validate_state()
    _memory_agrees_with_database(rt, db_url)
    assert_database_valid(db_url)

    # and the library's scan can still be taken to the end, with the exact file set
    fs.release_and_join()
    _scan_to_the_end(rt, db_url, library.id, expected)


def _retry(call: Callable[[], Any], outcome: str, job_id: int) -> None:
    if outcome == "ok":
        call()
    elif outcome == "busy":
        with pytest.raises(LibraryBusy) as busy:
            call()
        assert busy.value.job_id == job_id, "the refusal names the job the first attempt committed"
    elif outcome == "illegal":
        with pytest.raises(IllegalTransition):
            call()
    else:
        with pytest.raises(NotFound):
            call()


def _scan_to_the_end(rt: scanguard.Runtime, url: str, library_id: int, expected: list[str]) -> None:
    """Take the library's scan to completed: resume its paused job, wait for its running one, or start one."""
    jobs = rt.list_jobs(library_id=library_id, limit=1).items  # newest first
    job = jobs[0] if jobs else rt.start_scan(library_id)
    if job.status == "paused":
        rt.resume_scan(job.id)
    done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=30)
    assert done.status == "completed", done
    assert indexed_paths(url, library_id) == expected
    assert job_row(url, done.id)["files_processed"] == len(expected)
    assert_database_valid(url)


def test_events_committed_before_an_after_commit_fault_are_still_delivered_to_subscribers(
    sqlite_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """The events table is the outbox: what committed is published, even if the step after commit failed."""
    root = tmp_path / "library"
    media_tree.build_tree(root, 5)
    rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS))
    library = rt.add_library(root)
    seen: list[str] = []
    adopted = threading.Event()

    def on_event(event: scanguard.Event) -> None:
        seen.append(event.kind)
        if event.kind == "orphan.adopted":
            adopted.set()

    rt.subscribe(on_event)
    rt.store.set_fault_hook(FaultOnce("create_job", "after_commit"))
    with pytest.raises(OperationFailed):
        rt.start_scan(library.id)
    rt.store.set_fault_hook(None)

    # the bus delivers in commit order: once the later orphan.adopted arrived, job.started had its turn
    assert adopted.wait(10)
    (job,) = rt.current_jobs()
    assert trail(sqlite_url, job.id)[0] == ("job.started", None)
    assert "job.started" in seen, seen
