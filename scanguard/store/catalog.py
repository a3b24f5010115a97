"""Library transactions and the read side: libraries, jobs, files and events, paged."""

from __future__ import annotations

import sqlalchemy as sa

from scanguard.errors import LibraryExists, NotFound
from scanguard.records import ACTIVE_STATUSES, STATUSES, Event, Job, Library, MediaFile, Page, RemovedLibrary
from scanguard.store.leases import release_lease
from scanguard.store.tables import events, libraries, library_leases, media_files, scan_jobs
from scanguard.store.tx import Tx, event_from_row, file_from_row, job_from_row, library_from_row


def _present_count() -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.count())
        .where(media_files.c.library_id == libraries.c.id, media_files.c.missing_since.is_(None))
        .scalar_subquery()
    )


async def add_library(tx: Tx, path: str, name: str, kind: str) -> Library:
    existing = (await tx.conn.execute(sa.select(libraries.c.id).where(libraries.c.path == path))).scalar()
    if existing is not None:
        raise LibraryExists(path, existing)
    result = await tx.conn.execute(
        libraries.insert().values(path=path, name=name, kind=kind, created_at=tx.now)
    )
    (library_id,) = result.inserted_primary_key or (0,)
    await tx.event("library.added", library_id=library_id, path=path, name=name, kind=kind)
    return Library(int(library_id), path, name, kind, tx.now, 0)


async def get_library(tx: Tx, library_id: int) -> Library:
    row = (
        await tx.conn.execute(
            sa.select(libraries, _present_count().label("n")).where(libraries.c.id == library_id)
        )
    ).first()
    if row is None:
        raise NotFound("library", library_id)
    return library_from_row(row, row.n)


async def list_libraries(tx: Tx) -> tuple[Library, ...]:
    rows = (
        await tx.conn.execute(sa.select(libraries, _present_count().label("n")).order_by(libraries.c.id))
    ).all()
    return tuple(library_from_row(r, r.n) for r in rows)


async def remove_library(tx: Tx, library_id: int) -> RemovedLibrary:
    """The library, its jobs, its files and its lease, in one transaction."""
    await get_library(tx, library_id)
    await release_lease(tx, library_id)
    files = await tx.conn.execute(media_files.delete().where(media_files.c.library_id == library_id))
    jobs = await tx.conn.execute(scan_jobs.delete().where(scan_jobs.c.library_id == library_id))
    await tx.conn.execute(library_leases.delete().where(library_leases.c.library_id == library_id))
    await tx.conn.execute(libraries.delete().where(libraries.c.id == library_id))
    await tx.event(
        "library.removed",
        library_id=library_id,
        jobs_removed=jobs.rowcount,
        media_files_removed=files.rowcount,
    )
    return RemovedLibrary(library_id, jobs.rowcount, files.rowcount)


async def get_job(tx: Tx, job_id: int) -> Job:
    row = (await tx.conn.execute(sa.select(scan_jobs).where(scan_jobs.c.id == job_id))).first()
    if row is None:
        raise NotFound("job", job_id)
    return job_from_row(row)


async def list_jobs(
    tx: Tx,
    *,
    statuses: tuple[str, ...] = (),
    library_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[Job]:
    where: list[sa.ColumnElement[bool]] = []
    if statuses:
        where.append(scan_jobs.c.status.in_(statuses))
    if library_id is not None:
        where.append(scan_jobs.c.library_id == library_id)
    total = (
        await tx.conn.execute(sa.select(sa.func.count()).select_from(scan_jobs).where(*where))
    ).scalar_one()
    rows = (
        await tx.conn.execute(
            sa.select(scan_jobs).where(*where).order_by(scan_jobs.c.id.desc()).limit(limit).offset(offset)
        )
    ).all()
    return Page(tuple(job_from_row(r) for r in rows), total, limit, offset)


async def active_jobs(tx: Tx) -> tuple[Job, ...]:
    page = await list_jobs(tx, statuses=ACTIVE_STATUSES, limit=1_000_000)
    return page.items


async def list_files(
    tx: Tx,
    library_id: int,
    *,
    limit: int = 100,
    offset: int = 0,
    include_missing: bool = False,
    errors: bool = False,
) -> Page[MediaFile]:
    """A library's files in path order; `errors`: only those whose per-file work failed."""
    await get_library(tx, library_id)
    where = [media_files.c.library_id == library_id]
    if errors:
        where.append(media_files.c.error.is_not(None))
    if not include_missing:
        where.append(media_files.c.missing_since.is_(None))
    total = (
        await tx.conn.execute(sa.select(sa.func.count()).select_from(media_files).where(*where))
    ).scalar_one()
    rows = (
        await tx.conn.execute(
            sa.select(media_files).where(*where).order_by(media_files.c.path).limit(limit).offset(offset)
        )
    ).all()
    return Page(tuple(file_from_row(r) for r in rows), total, limit, offset)


async def list_events(
    tx: Tx,
    *,
    job_id: int | None = None,
    library_id: int | None = None,
    kind: str | None = None,
    after_id: int = 0,
    limit: int = 100,
    newest_first: bool = False,
) -> tuple[Event, ...]:
    where: list[sa.ColumnElement[bool]] = [events.c.id > after_id]
    if job_id is not None:
        where.append(events.c.job_id == job_id)
    if library_id is not None:
        where.append(events.c.library_id == library_id)
    if kind:
        where.append(events.c.kind.startswith(kind) if kind.endswith(".") else events.c.kind == kind)
    order = events.c.id.desc() if newest_first else events.c.id
    rows = (await tx.conn.execute(sa.select(events).where(*where).order_by(order).limit(limit))).all()
    return tuple(event_from_row(r) for r in rows)


async def record_event(
    tx: Tx, kind: str, library_id: int | None, job_id: int | None, data: dict[str, object]
) -> Event:
    """A decision with no row change of its own (an alert, a validator finding)."""
    return await tx.event(kind, library_id=library_id, job_id=job_id, **data)


async def ping(tx: Tx) -> bool:
    return (await tx.conn.execute(sa.select(sa.literal(1)))).scalar() == 1


async def running_with_leases(tx: Tx) -> tuple[tuple[Job, object], ...]:
    """Running jobs with their library lease's expiry, for orphan and stall detection."""
    rows = (
        await tx.conn.execute(
            sa.select(scan_jobs, library_leases.c.expires_at.label("lease_expires_at"))
            .select_from(
                scan_jobs.outerjoin(library_leases, library_leases.c.library_id == scan_jobs.c.library_id)
            )
            .where(scan_jobs.c.status == "running")
            .order_by(scan_jobs.c.id)
        )
    ).all()
    return tuple((job_from_row(r), r.lease_expires_at) for r in rows)


async def job_counts(tx: Tx) -> dict[str, int]:
    """How many jobs are in each status, and how many libraries there are: one read for the status page."""
    rows = (
        await tx.conn.execute(sa.select(scan_jobs.c.status, sa.func.count()).group_by(scan_jobs.c.status))
    ).all()
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    counts.update({status: int(n) for status, n in rows})
    counts["libraries"] = (
        await tx.conn.execute(sa.select(sa.func.count()).select_from(libraries))
    ).scalar_one()
    return counts
