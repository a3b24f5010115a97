"""Job lifecycle transactions: start, finish, pause, resume, delete, fail, and supervised restarts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from scanguard.errors import Fenced, IllegalTransition, LibraryBusy, NotFound
from scanguard.records import DeletedJob, Job
from scanguard.store.leases import acquire_lease, active_job_id, fence, release_lease
from scanguard.store.tables import libraries, media_files, scan_jobs
from scanguard.store.tx import Tx, load_job

_FROM = {"pause": "running", "resume": "paused"}
"""The status a job must be in for a user's pause or resume."""


def refusal(job: Job, action: str) -> IllegalTransition | None:
    """Why a user's `action` (pause, resume) cannot apply to the job as read, or None: the one check the
    transaction makes under its lock, and the pre-flight makes on a read to answer 409 without a write."""
    if job.status != _FROM[action]:
        return IllegalTransition(job.id, job.status, action)
    return None


def _job_or_404(tx: Tx, job_id: int, library_id: int | None = None) -> Job:
    """The job, locked for this transaction; NotFound if it is gone or belongs to another library."""
    job = load_job(tx.conn, job_id, for_update=True)
    if job is None or (library_id is not None and job.library_id != library_id):
        raise NotFound("job", job_id)
    return job


def create_job(
    tx: Tx,
    library_id: int,
    retry_failed: bool = False,
    scope: tuple[str, ...] = (),
    trigger: str = "user",
) -> Job:
    """Start a scan (of a normalized scope, or the whole library): pre-flight (library exists, none
    active), take the lease, insert the running job."""
    if (tx.conn.execute(sa.select(libraries.c.id).where(libraries.c.id == library_id))).scalar() is None:
        raise NotFound("library", library_id)
    busy = active_job_id(tx, library_id)
    if busy is not None:
        raise LibraryBusy(library_id, busy)
    token = acquire_lease(tx, library_id)
    result = tx.conn.execute(
        scan_jobs.insert().values(
            library_id=library_id,
            status="running",
            # a scope is counted by its scan; the whole library's last count stands in for a full scan
            total_estimate=None if scope else last_completed_count(tx, library_id),
            fencing_token=token,
            owner=tx.instance,
            created_at=tx.now,
            started_at=tx.now,
            updated_at=tx.now,
            heartbeat_at=tx.now,
            skip_reasons={},
            retry_failed=retry_failed,
            scope=list(scope),
            trigger=trigger,
        )
    )
    (job_id,) = result.inserted_primary_key or (0,)
    tx.event(
        "job.started",
        library_id=library_id,
        job_id=job_id,
        token=token,
        retry_failed=retry_failed,
        scope=list(scope),
        trigger=trigger,
    )
    job = load_job(tx.conn, int(job_id))
    assert job is not None
    return job


def last_completed_count(tx: Tx, library_id: int) -> int | None:
    """The files the library's latest completed full scan found: the only count that may stand in for the
    counting pass (a failed, paused or deleted job stopped part-way, and a scoped one saw only its scope,
    so their counts are not the library's)."""
    found: int | None = (
        tx.conn.execute(
            sa.select(scan_jobs.c.files_found)
            .where(
                scan_jobs.c.library_id == library_id,
                scan_jobs.c.status == "completed",
                sa.cast(scan_jobs.c.scope, sa.Text) == "[]",
            )
            .order_by(scan_jobs.c.finished_at.desc(), scan_jobs.c.id.desc())
            .limit(1)
        )
    ).scalar()
    return found


def _replace(job: Job, values: dict[str, Any]) -> Job:
    return replace(job, **values)


def finish_job(
    tx: Tx,
    job_id: int,
    library_id: int,
    token: int,
    max_vanished_ratio: float,
    min_files: int,
    root_empty: bool = False,
) -> Job:
    """Complete a walked job: mark vanished files missing, unless the library suddenly looks empty — most
    of its files vanished, or (`root_empty`, what a scoped scan looks at) its root lists nothing."""
    job = fence(tx, job_id, library_id, token)
    vanished = (
        tx.conn.execute(
            sa.select(sa.func.count()).where(
                media_files.c.vanished_job_id == job_id, media_files.c.missing_since.is_(None)
            )
        )
    ).scalar_one()
    present = (
        tx.conn.execute(
            sa.select(sa.func.count()).where(
                media_files.c.library_id == library_id, media_files.c.missing_since.is_(None)
            )
        )
    ).scalar_one()
    emptied = root_empty and vanished > 0
    if emptied or (present >= min_files and vanished > present * max_vanished_ratio):
        message = (
            f"{vanished} of {present} files vanished: is the drive unmounted? nothing was marked missing"
        )
        if emptied:
            message = f"the library root is empty: is the drive unmounted? {message}"
        # the walk is void: forget its vanished marks and restart it on resume, or it could never complete
        tx.conn.execute(
            media_files.update().where(media_files.c.vanished_job_id == job_id).values(vanished_job_id=None)
        )
        # (what it wrote stays written and counted: changed, bytes, errors; the walk's tallies start over)
        walk_reset: dict[str, Any] = {
            "checkpoint": None,
            "files_found": 0,
            "files_processed": 0,
            "files_skipped": 0,
            "skip_reasons": {},
            "progress": 0.0,
        }
        tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id).values(**walk_reset))
        return _pause(tx, _replace(job, walk_reset), "root_unavailable", message)
    if vanished:
        tx.conn.execute(
            media_files.update()
            .where(media_files.c.vanished_job_id == job_id, media_files.c.missing_since.is_(None))
            .values(missing_since=tx.now, vanished_job_id=None)
        )
    values = {
        "status": "completed",
        "progress": 100.0,
        "files_removed": job.files_removed + vanished,
        "finished_at": tx.now,
        "updated_at": tx.now,
        "heartbeat_at": tx.now,
        "pause_reason": None,
    }
    tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id).values(**values))
    release_lease(tx, library_id)
    done = _replace(job, values)
    tx.event(
        "job.completed",
        library_id=library_id,
        job_id=job_id,
        files_found=done.files_found,
        files_processed=done.files_processed,
        files_skipped=done.files_skipped,
        files_removed=done.files_removed,
        files_changed=done.files_changed,
        files_moved=done.files_moved,
        errors=done.errors,
    )
    return done


def _pause(tx: Tx, job: Job, reason: str, error: str | None = None) -> Job:
    values: dict[str, Any] = {"status": "paused", "pause_reason": reason, "updated_at": tx.now}
    if error is not None:
        values["last_error"] = error
    tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job.id).values(**values))
    release_lease(tx, job.library_id)
    data: dict[str, Any] = {"reason": reason, "checkpoint": job.checkpoint}
    if error is not None:
        data["error"] = error
    tx.event("job.paused", library_id=job.library_id, job_id=job.id, **data)
    return _replace(job, values)


def pause_job(
    tx: Tx,
    job_id: int,
    reason: str,
    *,
    error: str | None = None,
    token: int | None = None,
    library_id: int | None = None,
) -> Job:
    """running → paused with a reason; with a token, only if that writer still owns the job."""
    job = _job_or_404(tx, job_id, library_id)
    if (refused := refusal(job, "pause")) is not None:
        raise refused
    if token is not None and job.fencing_token != token:
        raise Fenced(job_id, token)
    return _pause(tx, job, reason, error)


def resume_job(tx: Tx, job_id: int, library_id: int | None = None) -> Job:
    """paused → running under a fresh lease token, from the checkpoint."""
    job = _job_or_404(tx, job_id, library_id)
    if (refused := refusal(job, "resume")) is not None:
        raise refused
    token = acquire_lease(tx, job.library_id)
    values = {
        "status": "running",
        "pause_reason": None,
        "fencing_token": token,
        "owner": tx.instance,
        "heartbeat_at": tx.now,
        "updated_at": tx.now,
    }
    tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id).values(**values))
    tx.event("job.resumed", library_id=job.library_id, job_id=job_id, checkpoint=job.checkpoint, token=token)
    return _replace(job, values)


def delete_job(tx: Tx, job_id: int, library_id: int | None = None) -> DeletedJob:
    """Hard delete: the job row and the media files it discovered, fencing any writer still running."""
    job = _job_or_404(tx, job_id, library_id)
    if job.active:
        release_lease(tx, job.library_id)
    removed = tx.conn.execute(media_files.delete().where(media_files.c.scan_job_id == job_id))
    tx.conn.execute(scan_jobs.delete().where(scan_jobs.c.id == job_id))
    tx.event(
        "job.deleted",
        library_id=job.library_id,
        job_id=job_id,
        status=job.status,
        media_files_removed=removed.rowcount,
    )
    return DeletedJob(job_id, job.library_id, removed.rowcount)


def fail_job(tx: Tx, job_id: int, error: str, restarts: int) -> Job:
    """running/paused → failed, with the error and the restart count."""
    job = _job_or_404(tx, job_id)
    if not job.active:
        raise IllegalTransition(job_id, job.status, "fail")
    if job.status == "running" and job.owner != tx.instance:
        raise Fenced(job_id, job.fencing_token)  # another instance took it over: not ours to fail
    values = {
        "status": "failed",
        "last_error": error,
        "restarts": max(job.restarts, restarts),  # the column counts every restart, not just this window's
        "finished_at": tx.now,
        "updated_at": tx.now,
    }
    tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id).values(**values))
    release_lease(tx, job.library_id)
    tx.event("job.failed", library_id=job.library_id, job_id=job_id, error=error, restarts=restarts)
    return _replace(job, values)


def record_restart(tx: Tx, job_id: int, error: str, delay: float) -> Job:
    """Count a supervisor restart and take a fresh token for the restarted writer."""
    job = _job_or_404(tx, job_id)
    if job.status != "running":
        raise IllegalTransition(job_id, job.status, "restart")
    if job.owner != tx.instance:
        raise Fenced(job_id, job.fencing_token)  # another instance took it over while this one was away
    token = acquire_lease(tx, job.library_id)
    values = {
        "restarts": job.restarts + 1,
        "last_error": error,
        "fencing_token": token,
        "owner": tx.instance,
        "heartbeat_at": tx.now,
        "updated_at": tx.now,
    }
    tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id).values(**values))
    tx.event(
        "supervisor.restart",
        library_id=job.library_id,
        job_id=job_id,
        error=error,
        restarts=job.restarts + 1,
        delay=round(delay, 3),
        checkpoint=job.checkpoint,
    )
    return _replace(job, values)
