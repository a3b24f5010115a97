"""Issue 3, items 5 and 7: the state validator, retention cleanup and emergency cleanup, against the rows."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import scanguard
from scanguard import EmergencyCleanupDisabled
from tests.integration.safeguards_support import (
    QUIET_SAFEGUARDS,
    HangingFileSystem,
    assert_database_valid,
    count,
    days_ago_literal,
    indexed_paths,
    job_events,
    job_row,
    release_hung_walks,  # noqa: F401 - a fixture, used through pytestmark
    settle_commits,
    trail,
)
from tests.support.db import db_exec, db_rows, snapshot
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("release_hung_walks")]

MISMATCHES = "scanguard_state_mismatches_total"
# one walker: the scan's own walk is what hangs listing the chosen directory, so once `fs.entered` is set the
# scan is stuck there (with more walkers a lister thread hangs first and the walk goes on until it gets there)
HUNG_WALK = {"batch_size": 5, "batch_seconds": 5, "walkers": 1}


def _mismatches(rt: scanguard.Runtime, direction: str) -> float:
    return rt.metrics.registry.get_sample_value(MISMATCHES, {"direction": direction}) or 0.0


def _tree(tmp_path: Path, media_tree: Any, name: str, n: int = 40) -> tuple[Path, list[str]]:
    root = tmp_path / name
    media_tree.build_tree(root, n, n_other=4)
    return root, sorted(media_tree.expected_media(root))


def _hang_dir(root: Path) -> str:
    return str(root / "Artist 000" / "Album 02")


def _completed(rt: scanguard.Runtime, library_id: int) -> scanguard.Job:
    job = rt.start_scan(library_id)
    done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=30)
    assert done.status == "completed", done
    return done


def _let_stuck_threads_go(fs: HangingFileSystem) -> None:
    fs.release_and_join()


# ---- the state validator ------------------------------------------------------------------------------


def test_the_validator_pauses_as_orphaned_a_running_row_that_no_live_actor_owns(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """Database says running, memory has no actor: paused as orphaned, counted, published, resumable."""
    root, expected = _tree(tmp_path, media_tree, "library")
    fs = HangingFileSystem(hang_on=[_hang_dir(root)])
    rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS, scan=HUNG_WALK), fs=fs)
    library = rt.add_library(root)
    job = rt.start_scan(library.id)
    assert fs.entered.wait(10)
    rt.pause_scan(job.id)
    _let_stuck_threads_go(fs)
    assert job.id not in rt.live_scans()

    # the planted mismatch: the row claims this instance runs it
    db_exec(
        db_url,
        f"UPDATE scan_jobs SET status = 'running', pause_reason = NULL, owner = '{rt.instance}' "
        f"WHERE id = {job.id}",
    )
    assert _mismatches(rt, "db_running_no_actor") == 0

    report = rt.validate_state()

    assert [(f.job_id, f.direction, f.action) for f in report.fixes] == [
        (job.id, "db_running_no_actor", "paused")
    ]
    row = job_row(db_url, job.id)
    assert (row["status"], row["pause_reason"]) == ("paused", "orphaned")
    assert _mismatches(rt, "db_running_no_actor") == 1
    assert _mismatches(rt, "actor_not_running_in_db") == 0
    assert job.id not in rt.live_scans()
    assert rt.validate_state().fixes == (), "a second pass finds nothing left to fix"

    assert trail(db_url, job.id) == [
        ("job.started", None),
        ("job.paused", "user"),
        ("job.paused", "orphaned"),
        ("orphan.adopted", None),
    ]
    adopted = job_events(db_url, job.id)[-1][1]
    assert adopted["detected_by"] == "manual"
    assert adopted["action"] == "paused"

    rt.resume_scan(job.id)
    assert rt.wait_for_job(job.id, ("completed", "failed"), timeout=30).status == "completed"
    assert indexed_paths(db_url, library.id) == expected
    assert_database_valid(db_url)


# what another instance (or an operator with SQL) may have done to a job this process is scanning
PLANTED = {
    "paused": ["UPDATE scan_jobs SET status = 'paused', pause_reason = 'user' WHERE id = {job}"],
    "failed": ["UPDATE scan_jobs SET status = 'failed', last_error = 'planted' WHERE id = {job}"],
    "deleted": [
        "DELETE FROM media_files WHERE scan_job_id = {job}",
        "DELETE FROM scan_jobs WHERE id = {job}",
    ],
}


@pytest.mark.parametrize("planted", list(PLANTED))
def test_the_validator_stops_a_live_scan_whose_row_says_paused_failed_or_deleted(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
    planted: str,
) -> None:
    """Memory has an actor, the database says it is not running: the actor is stopped, counted, published."""
    root, expected = _tree(tmp_path, media_tree, "library")
    fs = HangingFileSystem(hang_on=[_hang_dir(root)])
    rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS, scan=HUNG_WALK), fs=fs)
    library = rt.add_library(root)
    job = rt.start_scan(library.id)
    assert fs.entered.wait(10)
    assert job.id in rt.live_scans()

    db_exec(db_url, *(sql.format(job=job.id) for sql in PLANTED[planted]))
    report = rt.validate_state()

    assert [(f.job_id, f.direction, f.action) for f in report.fixes] == [
        (job.id, "actor_not_running_in_db", "stopped")
    ]
    assert job.id not in rt.live_scans()
    assert _mismatches(rt, "actor_not_running_in_db") == 1
    assert _mismatches(rt, "db_running_no_actor") == 0
    before = job_row(db_url, job.id)
    files_before = len(indexed_paths(db_url, library.id))
    _let_stuck_threads_go(fs)
    assert job_row(db_url, job.id) == before, "the stopped scan wrote after the fix"
    assert len(indexed_paths(db_url, library.id)) == files_before

    fixed = [d for k, d in job_events(db_url, job.id) if k == "validator.fixed"]
    assert fixed == [{"direction": "actor_not_running_in_db", "action": "stopped", "source": "manual"}]
    assert trail(db_url, job.id) == [("job.started", None), ("validator.fixed", None)]

    if planted == "paused":
        rt.resume_scan(job.id)
        final = job.id
    else:
        final = rt.start_scan(library.id).id
    assert rt.wait_for_job(final, ("completed", "failed"), timeout=30).status == "completed"
    assert indexed_paths(db_url, library.id) == expected
    assert_database_valid(db_url)


# ---- retention --------------------------------------------------------------------------------------


def test_cleanup_removes_only_jobs_and_events_past_retention_and_keeps_their_media_files(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """An old finished job and old events go; its files stay unlinked; recent and active jobs stay."""
    old_root, old_expected = _tree(tmp_path, media_tree, "old", 20)
    recent_root, _ = _tree(tmp_path, media_tree, "recent", 20)
    active_root, _ = _tree(tmp_path, media_tree, "active", 30)
    fs = HangingFileSystem(hang_on=[_hang_dir(active_root)])
    rt = runtime_factory(
        make_config(
            safeguards={**QUIET_SAFEGUARDS, "old_completed_job_retention": "30d", "event_retention": "30d"},
            scan=HUNG_WALK,
        ),
        fs=fs,
    )
    old_lib, recent_lib, active_lib = (rt.add_library(p) for p in (old_root, recent_root, active_root))
    old_job = _completed(rt, old_lib.id)
    recent_job = _completed(rt, recent_lib.id)
    active_job = rt.start_scan(active_lib.id)
    assert fs.entered.wait(10)
    rt.pause_scan(active_job.id)
    _let_stuck_threads_go(fs)

    forty_days_ago = days_ago_literal(db_url, 40)
    db_exec(
        db_url,
        f"UPDATE scan_jobs SET finished_at = {forty_days_ago}, created_at = {forty_days_ago}, "
        f"started_at = {forty_days_ago}, updated_at = {forty_days_ago} WHERE id = {old_job.id}",
        f"UPDATE events SET at = {forty_days_ago} WHERE job_id = {old_job.id}",
        # an active job that looks ancient in every timestamp is still never touched
        f"UPDATE scan_jobs SET finished_at = {forty_days_ago}, created_at = {forty_days_ago}, "
        f"started_at = {forty_days_ago}, updated_at = {forty_days_ago} WHERE id = {active_job.id}",
    )
    old_events = count(db_url, f"SELECT COUNT(*) FROM events WHERE job_id = {old_job.id}")
    assert old_events >= 2
    active_before = db_rows(db_url, f"SELECT * FROM scan_jobs WHERE id = {active_job.id}")
    recent_before = db_rows(db_url, f"SELECT * FROM scan_jobs WHERE id = {recent_job.id}")
    files_before = snapshot(db_url)["media_files"]

    removed = rt.run_cleanup()

    assert removed["jobs"] == 1
    assert removed["events"] == old_events
    assert job_row(db_url, old_job.id) == {}
    assert count(db_url, f"SELECT COUNT(*) FROM events WHERE job_id = {old_job.id}") == 0
    # the old job's files belong to the library: all there, no longer linked to the gone job
    assert indexed_paths(db_url, old_lib.id) == old_expected
    assert (
        count(
            db_url,
            f"SELECT COUNT(*) FROM media_files WHERE library_id = {old_lib.id} AND scan_job_id IS NOT NULL",
        )
        == 0
    )
    assert len(snapshot(db_url)["media_files"]) == len(files_before)
    assert db_rows(db_url, f"SELECT * FROM scan_jobs WHERE id = {recent_job.id}") == recent_before
    assert db_rows(db_url, f"SELECT * FROM scan_jobs WHERE id = {active_job.id}") == active_before
    assert count(db_url, f"SELECT COUNT(*) FROM media_files WHERE scan_job_id = {recent_job.id}") == 20
    assert [k for k, _ in job_events(db_url, recent_job.id)] == ["job.started", "job.completed"]

    decision = db_rows(db_url, "SELECT data FROM events WHERE kind = 'cleanup.jobs_removed'")
    assert len(decision) == 1
    assert f"{old_job.id}" in str(decision[0][0])
    assert rt.run_cleanup() == dict.fromkeys(removed, 0), "a second pass has nothing left to do"
    assert_database_valid(db_url)


# ---- emergency cleanup ------------------------------------------------------------------------------


def test_emergency_cleanup_reports_exactly_what_the_database_shows_afterwards(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """Own scans paused with their checkpoints (emergency), a dead owner's orphaned, old data gone: report == rows."""
    roots = [_tree(tmp_path, media_tree, f"lib{i}", 30) for i in range(2)]
    old_root, _ = _tree(tmp_path, media_tree, "old", 10)
    ghost_root, _ = _tree(tmp_path, media_tree, "ghost", 10)
    fs = HangingFileSystem(hang_on=[_hang_dir(root) for root, _ in roots])
    rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS, scan=HUNG_WALK), fs=fs)
    old_lib = rt.add_library(old_root)
    old_job = _completed(rt, old_lib.id)
    db_exec(
        db_url,
        f"UPDATE scan_jobs SET finished_at = {days_ago_literal(db_url, 40)} WHERE id = {old_job.id}",
        f"UPDATE events SET at = {days_ago_literal(db_url, 40)} WHERE job_id = {old_job.id}",
    )
    # a job a dead process left running (a pid beyond pid_max, started at the epoch)
    ghost_job = _completed(rt, rt.add_library(ghost_root).id)
    db_exec(
        db_url,
        f"UPDATE scan_jobs SET status = 'running', finished_at = NULL, "
        f"owner = '{socket.gethostname()}:{2**22 + 7}:1' WHERE id = {ghost_job.id}",
    )
    libs = [rt.add_library(root) for root, _ in roots]
    jobs = [rt.start_scan(lib.id) for lib in libs]
    wait_for(lambda: len(fs.hanging) == 2, 10, "both scans to hang mid-walk")
    wait_for(
        lambda: all(job_row(db_url, j.id)["checkpoint"] for j in jobs), 10, "both scans to commit a batch"
    )
    settle_commits(rt)  # the batch sent just before each walk hung has committed
    checkpoints = {j.id: job_row(db_url, j.id)["checkpoint"] for j in jobs}
    jobs_before = count(db_url, "SELECT COUNT(*) FROM scan_jobs")
    old_events = count(db_url, f"SELECT COUNT(*) FROM events WHERE job_id = {old_job.id}")

    report = rt.emergency_cleanup("test")

    assert sorted(report["paused_jobs"]) == sorted(j.id for j in jobs)
    for job in jobs:
        row = job_row(db_url, job.id)
        assert (row["status"], row["pause_reason"]) == ("paused", "emergency")
        assert row["checkpoint"] == checkpoints[job.id], "the checkpoint is kept"
        assert job.id not in rt.live_scans()
    running = count(db_url, "SELECT COUNT(*) FROM scan_jobs WHERE status = 'running'")
    assert report["running_jobs_after"] == 0 == running
    assert report["removed"]["jobs"] == jobs_before - count(db_url, "SELECT COUNT(*) FROM scan_jobs") == 1
    assert report["removed"]["events"] == old_events
    assert count(db_url, f"SELECT COUNT(*) FROM events WHERE job_id = {old_job.id}") == 0
    active = db_rows(
        db_url,
        "SELECT id, status, pause_reason FROM scan_jobs WHERE status IN ('pending', 'running', 'paused') "
        "ORDER BY id",
    )
    assert sorted((a["id"], a["status"], a["pause_reason"]) for a in report["active_jobs_after"]) == [
        tuple(r) for r in active
    ]
    assert report["orphaned_jobs_paused"] == [ghost_job.id]
    assert (job_row(db_url, ghost_job.id)["status"], job_row(db_url, ghost_job.id)["pause_reason"]) == (
        "paused",
        "orphaned",
    )
    assert trail(db_url, ghost_job.id)[-2:] == [("job.paused", "orphaned"), ("orphan.adopted", None)]
    assert job_events(db_url, ghost_job.id)[-1][1]["detected_by"] == "emergency"
    recorded = db_rows(db_url, "SELECT data FROM events WHERE kind = 'emergency.cleanup'")
    assert len(recorded) == 1
    for job in jobs:
        assert trail(db_url, job.id)[-1] == ("job.paused", "emergency")

    _let_stuck_threads_go(fs)
    for job, (_, expected) in zip(jobs, roots, strict=True):
        rt.resume_scan(job.id)
        assert rt.wait_for_job(job.id, ("completed", "failed"), timeout=30).status == "completed"
        assert indexed_paths(db_url, job.library_id) == expected
        assert [k for k, r in trail(db_url, job.id)] == [
            "job.started",
            "job.paused",
            "job.resumed",
            "job.completed",
        ]
    assert_database_valid(db_url)


def test_emergency_cleanup_when_disabled_is_refused_and_changes_nothing(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """emergency_cleanup_enabled=False: EmergencyCleanupDisabled (403), and every row as it was."""
    root, _ = _tree(tmp_path, media_tree, "library", 10)
    rt = runtime_factory(
        make_config(
            safeguards={**QUIET_SAFEGUARDS, "emergency_cleanup_enabled": False}, scan={"batch_size": 5}
        )
    )
    library = rt.add_library(root)
    old_job = _completed(rt, library.id)
    db_exec(
        db_url,
        f"UPDATE scan_jobs SET finished_at = {days_ago_literal(db_url, 40)} WHERE id = {old_job.id}",
    )
    before = snapshot(db_url)

    with pytest.raises(EmergencyCleanupDisabled) as refused:
        rt.emergency_cleanup("test")

    assert refused.value.status == 403
    assert snapshot(db_url) == before


def test_a_second_runtime_in_the_same_process_never_takes_the_first_ones_live_scan_for_an_orphan(
    sqlite_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each Runtime is its own instance: the validator only repairs what its own instance owns."""
    import scanguard.runtime

    started = time.time()

    class SameSecond:
        """scanguard.runtime's view of the clock: both runtimes start within one second, as they usually do."""

        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        def time(self) -> float:
            return started

    monkeypatch.setattr(scanguard.runtime, "time", SameSecond())
    root, _ = _tree(tmp_path, media_tree, "library")
    fs = HangingFileSystem(hang_on=[_hang_dir(root)])
    cfg = make_config(safeguards=QUIET_SAFEGUARDS, scan=HUNG_WALK)
    first = runtime_factory(cfg, fs=fs)
    second = runtime_factory(cfg)
    job = first.start_scan(first.add_library(root).id)
    assert fs.entered.wait(10)

    report = second.validate_state()

    assert report.fixes == ()
    assert job_row(sqlite_url, job.id)["status"] == "running"
    assert first.instance != second.instance
