"""Job lifecycle transactions: leases and fencing tokens, start, batches, finish, pause, resume, delete."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from scanguard.errors import Fenced, IllegalTransition, LibraryBusy, NotFound
from scanguard.records import DeletedJob, Job
from scanguard.store.tables import ACTIVE_STATUSES, libraries, library_leases, media_files, scan_jobs
from scanguard.store.tx import Tx, load_job


@dataclass(frozen=True, slots=True)
class FileRow:
    """One new or changed media file to upsert."""

    path: str
    size: int
    mtime: float
    media_type: str
    quick_hash: str | None = None
    error: str | None = None
    meta: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class BatchCommit:
    """One batch of a scan: its upserts, vanished rows, counters and checkpoint, under a fencing token."""

    job_id: int
    library_id: int
    token: int
    checkpoint: str | None
    upserts: tuple[FileRow, ...] = ()
    vanished_ids: tuple[int, ...] = ()
    found: int = 0
    processed: int = 0
    skipped: int = 0
    changed: int = 0
    bytes: int = 0
    errors: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    total_estimate: int | None = None


@dataclass(frozen=True, slots=True)
class Existing:
    """What the database knows of one file, for the rescan comparison."""

    id: int
    size: int
    mtime: float
    missing: bool


async def active_job_id(tx: Tx, library_id: int) -> int | None:
    return (
        await tx.conn.execute(
            sa.select(scan_jobs.c.id).where(
                scan_jobs.c.library_id == library_id, scan_jobs.c.status.in_(ACTIVE_STATUSES)
            )
        )
    ).scalar()


async def acquire_lease(tx: Tx, library_id: int) -> int:
    """Take the library's lease for this instance and return its new token (tokens only grow)."""
    query = sa.select(library_leases).where(library_leases.c.library_id == library_id)
    if tx.dialect == "postgresql":
        query = query.with_for_update()
    row = (await tx.conn.execute(query)).first()
    if row is None:
        await tx.conn.execute(
            library_leases.insert().values(
                library_id=library_id, owner=tx.instance, token=1, expires_at=tx.lease_expiry
            )
        )
        return 1
    lease = row._mapping
    held_by_other = lease["owner"] not in (None, tx.instance)
    if held_by_other and lease["expires_at"] is not None and lease["expires_at"] > tx.now:
        raise LibraryBusy(library_id, await active_job_id(tx, library_id), lease["owner"])
    token = int(lease["token"]) + 1
    await tx.conn.execute(
        library_leases.update()
        .where(library_leases.c.library_id == library_id)
        .values(owner=tx.instance, token=token, expires_at=tx.lease_expiry)
    )
    return token


async def release_lease(tx: Tx, library_id: int) -> None:
    """Free the lease at once (no wait for expiry) and move the token on, fencing any late writer."""
    await tx.conn.execute(
        library_leases.update()
        .where(library_leases.c.library_id == library_id)
        .values(owner=None, expires_at=None, token=library_leases.c.token + 1)
    )


async def _job_or_404(tx: Tx, job_id: int) -> Job:
    job = await load_job(tx.conn, job_id, for_update=True)
    if job is None:
        raise NotFound("job", job_id)
    return job


async def create_job(tx: Tx, library_id: int) -> Job:
    """Start a scan: pre-flight (library exists, none active), take the lease, insert the running job."""
    if (
        await tx.conn.execute(sa.select(libraries.c.id).where(libraries.c.id == library_id))
    ).scalar() is None:
        raise NotFound("library", library_id)
    busy = await active_job_id(tx, library_id)
    if busy is not None:
        raise LibraryBusy(library_id, busy)
    token = await acquire_lease(tx, library_id)
    result = await tx.conn.execute(
        scan_jobs.insert().values(
            library_id=library_id,
            status="running",
            fencing_token=token,
            owner=tx.instance,
            created_at=tx.now,
            started_at=tx.now,
            updated_at=tx.now,
            heartbeat_at=tx.now,
            skip_reasons={},
        )
    )
    (job_id,) = result.inserted_primary_key or (0,)
    await tx.event("job.started", library_id=library_id, job_id=job_id, token=token)
    job = await load_job(tx.conn, int(job_id))
    assert job is not None
    return job


async def existing_files(tx: Tx, library_id: int, after: str | None, upto: str | None) -> dict[str, Existing]:
    """The rows of one library whose path lies in (after, upto]; upto None means to the end."""
    query = sa.select(
        media_files.c.id,
        media_files.c.path,
        media_files.c.size,
        media_files.c.mtime,
        media_files.c.missing_since.is_not(None),  # a flag from the database, no datetime per row
    ).where(media_files.c.library_id == library_id)
    if after:
        query = query.where(media_files.c.path > after)
    if upto is not None:
        query = query.where(media_files.c.path <= upto)
    rows = (await tx.conn.execute(query)).all()
    # rows unpack as tuples: reading them by attribute name costs more than the query
    return {path: Existing(id_, size, mtime, bool(missing)) for id_, path, size, mtime, missing in rows}


def _upsert_statement(dialect: str) -> Any:
    # each dialect's insert is imported when first used: a SQLite process never loads the PostgreSQL one
    stmt: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

        stmt = pg_insert(media_files)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

        stmt = sqlite_insert(media_files)
    return stmt.on_conflict_do_update(
        index_elements=[media_files.c.library_id, media_files.c.path],
        set_={
            "size": stmt.excluded.size,
            "mtime": stmt.excluded.mtime,
            "media_type": stmt.excluded.media_type,
            "quick_hash": stmt.excluded.quick_hash,
            "last_seen_at": stmt.excluded.last_seen_at,
            "error": stmt.excluded.error,
            "meta": stmt.excluded.meta,
            "missing_since": sa.null(),
            "vanished_job_id": sa.null(),
        },
    )


_UPSERT_COLUMNS = (
    "library_id",
    "scan_job_id",
    "path",
    "size",
    "mtime",
    "media_type",
    "quick_hash",
    "first_seen_at",
    "last_seen_at",
    "error",
    "meta",
)


# per dialect object, forgotten with its engine (the cached SQL holds no reference to the dialect)
_driver_upserts: weakref.WeakKeyDictionary[sa.Dialect, str | None] = weakref.WeakKeyDictionary()
_PLAIN_COLUMNS = ("library_id", "scan_job_id", "path", "size", "media_type", "quick_hash", "error")


def _driver_upsert_sql(dialect: sa.Dialect) -> str | None:
    """The SQLite upsert as driver SQL, or None when this dialect needs the Core path.

    Core's executemany spends most of a batch building and processing a dict per row; the driver takes
    tuples. The SQL is compiled from the same Core statement, so both paths write the same thing. Only
    when the per-row values need no bind processing (mtime's to_float is moot for a float): the two
    timestamps and meta are processed by the caller.
    """
    if dialect in _driver_upserts:
        return _driver_upserts[dialect]
    sql: str | None = None
    if dialect.name == "sqlite" and dialect.paramstyle == "qmark":
        compiled = _upsert_statement("sqlite").compile(dialect=dialect, column_keys=list(_UPSERT_COLUMNS))
        if tuple(compiled.positiontup or ()) == _UPSERT_COLUMNS and not any(
            _processor(dialect, name) is not _same for name in _PLAIN_COLUMNS
        ):
            sql = compiled.string
    _driver_upserts[dialect] = sql
    return sql


def _processor(dialect: sa.Dialect, column: str) -> Callable[[Any], Any]:
    """The bind processor Core would apply to a media_files column on this dialect."""
    return media_files.c[column].type.dialect_impl(dialect).bind_processor(dialect) or _same


def _same(value: Any) -> Any:
    return value


async def _upsert(tx: Tx, batch: BatchCommit) -> None:
    dialect = tx.conn.dialect
    sql = _driver_upsert_sql(dialect)
    now = tx.now
    if sql is None:
        rows = [
            {
                "library_id": batch.library_id,
                "scan_job_id": batch.job_id,
                "path": f.path,
                "size": f.size,
                "mtime": f.mtime,
                "media_type": f.media_type,
                "quick_hash": f.quick_hash,
                "first_seen_at": now,
                "last_seen_at": now,
                "error": f.error,
                "meta": f.meta,
            }
            for f in batch.upserts
        ]
        await tx.conn.execute(_upsert_statement(tx.dialect), rows)
        return
    library_id, job_id = batch.library_id, batch.job_id
    stamp = _processor(dialect, "first_seen_at")(now)
    meta = _processor(dialect, "meta")
    no_meta = meta(None)
    await tx.conn.exec_driver_sql(
        sql,
        [
            (
                library_id,
                job_id,
                f.path,
                f.size,
                float(f.mtime),
                f.media_type,
                f.quick_hash,
                stamp,
                stamp,
                f.error,
                no_meta if f.meta is None else meta(f.meta),
            )
            for f in batch.upserts
        ],
    )


async def _fence(tx: Tx, job_id: int, library_id: int, token: int) -> Job:
    """Renew the lease and check the job, or raise Fenced: a stale writer commits nothing."""
    renewed = await tx.conn.execute(
        library_leases.update()
        .where(
            library_leases.c.library_id == library_id,
            library_leases.c.token == token,
            library_leases.c.owner == tx.instance,
        )
        .values(expires_at=tx.lease_expiry)
    )
    job = await load_job(tx.conn, job_id, for_update=True)
    if renewed.rowcount != 1 or job is None or job.status != "running" or job.fencing_token != token:
        raise Fenced(job_id, token)
    return job


def _progress(processed: int, total: int | None) -> float:
    if not total:
        return 0.0
    return min(99.9, 100.0 * processed / max(total, processed, 1))


async def commit_batch(tx: Tx, batch: BatchCommit) -> Job:
    """One batch, atomically: upserts, vanished marks, counters, checkpoint, heartbeat — or nothing."""
    job = await _fence(tx, batch.job_id, batch.library_id, batch.token)
    if batch.upserts:
        await _upsert(tx, batch)
    if batch.vanished_ids:
        await tx.conn.execute(
            media_files.update()
            .where(media_files.c.id.in_(batch.vanished_ids), media_files.c.missing_since.is_(None))
            .values(vanished_job_id=batch.job_id)
        )
    reasons = dict(job.skip_reasons)
    for reason, n in batch.skip_reasons.items():
        reasons[reason] = reasons.get(reason, 0) + n
    processed = job.files_processed + batch.processed
    total = batch.total_estimate if batch.total_estimate is not None else job.total_estimate
    values = {
        "files_found": job.files_found + batch.found,
        "files_processed": processed,
        "files_skipped": job.files_skipped + batch.skipped,
        "files_changed": job.files_changed + batch.changed,
        "bytes_processed": job.bytes_processed + batch.bytes,
        "errors": job.errors + batch.errors,
        "skip_reasons": reasons,
        "checkpoint": batch.checkpoint if batch.checkpoint is not None else job.checkpoint,
        "total_estimate": total,
        "progress": _progress(processed, total),
        "active_seconds": job.active_seconds + batch.elapsed,
        "heartbeat_at": tx.now,
        "updated_at": tx.now,
    }
    await tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job.id).values(**values))
    return _replace(job, values)


def _replace(job: Job, values: dict[str, Any]) -> Job:
    return replace(job, **values)


async def finish_job(
    tx: Tx, job_id: int, library_id: int, token: int, max_vanished_ratio: float, min_files: int
) -> Job:
    """Complete a walked job: mark vanished files missing, unless the library suddenly looks empty."""
    job = await _fence(tx, job_id, library_id, token)
    vanished = (
        await tx.conn.execute(
            sa.select(sa.func.count()).where(
                media_files.c.vanished_job_id == job_id, media_files.c.missing_since.is_(None)
            )
        )
    ).scalar_one()
    present = (
        await tx.conn.execute(
            sa.select(sa.func.count()).where(
                media_files.c.library_id == library_id, media_files.c.missing_since.is_(None)
            )
        )
    ).scalar_one()
    if present >= min_files and vanished > present * max_vanished_ratio:
        message = (
            f"{vanished} of {present} files vanished: is the drive unmounted? nothing was marked missing"
        )
        # the walk is void: forget its vanished marks and restart it on resume, or it could never complete
        await tx.conn.execute(
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
        await tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id).values(**walk_reset))
        return await _pause(tx, _replace(job, walk_reset), "root_unavailable", message)
    if vanished:
        await tx.conn.execute(
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
    await tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id).values(**values))
    await release_lease(tx, library_id)
    done = _replace(job, values)
    await tx.event(
        "job.completed",
        library_id=library_id,
        job_id=job_id,
        files_found=done.files_found,
        files_processed=done.files_processed,
        files_skipped=done.files_skipped,
        files_removed=done.files_removed,
        files_changed=done.files_changed,
        errors=done.errors,
    )
    return done


async def _pause(tx: Tx, job: Job, reason: str, error: str | None = None) -> Job:
    values: dict[str, Any] = {"status": "paused", "pause_reason": reason, "updated_at": tx.now}
    if error is not None:
        values["last_error"] = error
    await tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job.id).values(**values))
    await release_lease(tx, job.library_id)
    data: dict[str, Any] = {"reason": reason, "checkpoint": job.checkpoint}
    if error is not None:
        data["error"] = error
    await tx.event("job.paused", library_id=job.library_id, job_id=job.id, **data)
    return _replace(job, values)


async def pause_job(
    tx: Tx, job_id: int, reason: str, *, error: str | None = None, token: int | None = None
) -> Job:
    """running → paused with a reason; with a token, only if that writer still owns the job."""
    job = await _job_or_404(tx, job_id)
    if job.status != "running":
        raise IllegalTransition(job_id, job.status, "pause")
    if token is not None and job.fencing_token != token:
        raise Fenced(job_id, token)
    return await _pause(tx, job, reason, error)


async def resume_job(tx: Tx, job_id: int) -> Job:
    """paused → running under a fresh lease token, from the checkpoint."""
    job = await _job_or_404(tx, job_id)
    if job.status != "paused":
        raise IllegalTransition(job_id, job.status, "resume")
    token = await acquire_lease(tx, job.library_id)
    values = {
        "status": "running",
        "pause_reason": None,
        "fencing_token": token,
        "owner": tx.instance,
        "heartbeat_at": tx.now,
        "updated_at": tx.now,
    }
    await tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id).values(**values))
    await tx.event(
        "job.resumed", library_id=job.library_id, job_id=job_id, checkpoint=job.checkpoint, token=token
    )
    return _replace(job, values)


async def delete_job(tx: Tx, job_id: int) -> DeletedJob:
    """Hard delete: the job row and the media files it discovered, fencing any writer still running."""
    job = await _job_or_404(tx, job_id)
    if job.active:
        await release_lease(tx, job.library_id)
    removed = await tx.conn.execute(media_files.delete().where(media_files.c.scan_job_id == job_id))
    await tx.conn.execute(scan_jobs.delete().where(scan_jobs.c.id == job_id))
    await tx.event(
        "job.deleted",
        library_id=job.library_id,
        job_id=job_id,
        status=job.status,
        media_files_removed=removed.rowcount,
    )
    return DeletedJob(job_id, job.library_id, removed.rowcount)


async def fail_job(tx: Tx, job_id: int, error: str, restarts: int) -> Job:
    """running/paused → failed, with the error and the restart count."""
    job = await _job_or_404(tx, job_id)
    if not job.active:
        raise IllegalTransition(job_id, job.status, "fail")
    values = {
        "status": "failed",
        "last_error": error,
        "restarts": max(job.restarts, restarts),  # the column counts every restart, not just this window's
        "finished_at": tx.now,
        "updated_at": tx.now,
    }
    await tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id).values(**values))
    await release_lease(tx, job.library_id)
    await tx.event("job.failed", library_id=job.library_id, job_id=job_id, error=error, restarts=restarts)
    return _replace(job, values)


async def record_restart(tx: Tx, job_id: int, error: str, delay: float) -> Job:
    """Count a supervisor restart and take a fresh token for the restarted writer."""
    job = await _job_or_404(tx, job_id)
    if job.status != "running":
        raise IllegalTransition(job_id, job.status, "restart")
    token = await acquire_lease(tx, job.library_id)
    values = {
        "restarts": job.restarts + 1,
        "last_error": error,
        "fencing_token": token,
        "owner": tx.instance,
        "heartbeat_at": tx.now,
        "updated_at": tx.now,
    }
    await tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id).values(**values))
    await tx.event(
        "supervisor.restart",
        library_id=job.library_id,
        job_id=job_id,
        error=error,
        restarts=job.restarts + 1,
        delay=round(delay, 3),
        checkpoint=job.checkpoint,
    )
    return _replace(job, values)
