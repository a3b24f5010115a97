"""The store's read side: libraries, jobs, files and events, paged (each read declared in store/reads.py)."""

from __future__ import annotations

import sqlalchemy as sa

from scanguard.errors import NotFound
from scanguard.records import (
    ACTIVE_STATUSES,
    STATUSES,
    Event,
    EventQuery,
    Job,
    Library,
    MediaFile,
    Page,
)
from scanguard.store.tables import events, libraries, library_leases, media_files, scan_jobs, watch_pending
from scanguard.store.tx import Tx, event_from_row, file_from_row, job_from_row, library_from_row


def _present_count() -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.count())
        .where(media_files.c.library_id == libraries.c.id, media_files.c.missing_since.is_(None))
        .scalar_subquery()
    )


def _pending_count() -> sa.ScalarSelect[int]:
    return sa.select(sa.func.count()).where(watch_pending.c.library_id == libraries.c.id).scalar_subquery()


def get_library(tx: Tx, library_id: int) -> Library:
    row = (
        tx.conn.execute(
            sa.select(libraries, _present_count().label("n"), _pending_count().label("pending")).where(
                libraries.c.id == library_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("library", library_id)
    return library_from_row(row, row.n, row.pending, tx.now)


def library_for_start(tx: Tx, library_id: int) -> tuple[Library, int | None]:
    """A library (without its file count) and its active job, if any: a start's pre-flight, one query."""
    row = tx.conn.execute(_LIBRARY_FOR_START, {"library_id": library_id}).first()
    if row is None:
        raise NotFound("library", library_id)
    return library_from_row(row), row.active


def list_libraries(tx: Tx) -> tuple[Library, ...]:
    rows = (
        tx.conn.execute(
            sa.select(libraries, _present_count().label("n"), _pending_count().label("pending")).order_by(
                libraries.c.id
            )
        )
    ).all()
    return tuple(library_from_row(r, r.n, r.pending, tx.now) for r in rows)


def get_job(tx: Tx, job_id: int) -> Job:
    row = (tx.conn.execute(sa.select(scan_jobs).where(scan_jobs.c.id == job_id))).first()
    if row is None:
        raise NotFound("job", job_id)
    return job_from_row(row)


# the control operations' pre-flight reads, built once: the hottest queries of a busy admin API (a
# statement built per call costs SQLAlchemy a cache key each time)
_JOB_WITH_LIBRARY = (
    sa.select(scan_jobs, libraries.c.path, libraries.c.name, libraries.c.kind)
    .add_columns(libraries.c.created_at.label("library_created_at"))
    .join(libraries, libraries.c.id == scan_jobs.c.library_id)
    .where(scan_jobs.c.id == sa.bindparam("job_id"))
)
_LIBRARY_FOR_START = sa.select(
    libraries,
    sa.select(scan_jobs.c.id)
    .where(scan_jobs.c.library_id == libraries.c.id, scan_jobs.c.status.in_(ACTIVE_STATUSES))
    .limit(1)
    .scalar_subquery()
    .label("active"),
).where(libraries.c.id == sa.bindparam("library_id"))


def job_with_library(tx: Tx, job_id: int) -> tuple[Job, Library]:
    """A job and its library, in one query: what a control operation routes by."""
    row = tx.conn.execute(_JOB_WITH_LIBRARY, {"job_id": job_id}).first()
    if row is None:
        raise NotFound("job", job_id)
    m = row._mapping
    return job_from_row(row), Library(
        m["library_id"], m["path"], m["name"], m["kind"], m["library_created_at"]
    )


def list_jobs(
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
    total = (tx.conn.execute(sa.select(sa.func.count()).select_from(scan_jobs).where(*where))).scalar_one()
    rows = (
        tx.conn.execute(
            sa.select(scan_jobs).where(*where).order_by(scan_jobs.c.id.desc()).limit(limit).offset(offset)
        )
    ).all()
    return Page(tuple(job_from_row(r) for r in rows), total, limit, offset)


def active_jobs(tx: Tx) -> tuple[Job, ...]:
    page = list_jobs(tx, statuses=ACTIVE_STATUSES, limit=1_000_000)
    return page.items


def list_files(
    tx: Tx,
    library_id: int,
    *,
    limit: int = 100,
    offset: int = 0,
    include_missing: bool = False,
    errors: bool = False,
) -> Page[MediaFile]:
    """A library's files in path order; `errors`: only those whose per-file work failed."""
    get_library(tx, library_id)
    where = [media_files.c.library_id == library_id]
    if errors:
        where.append(media_files.c.error.is_not(None))
    if not include_missing:
        where.append(media_files.c.missing_since.is_(None))
    total = (tx.conn.execute(sa.select(sa.func.count()).select_from(media_files).where(*where))).scalar_one()
    rows = (
        tx.conn.execute(
            sa.select(media_files).where(*where).order_by(media_files.c.path).limit(limit).offset(offset)
        )
    ).all()
    return Page(tuple(file_from_row(r) for r in rows), total, limit, offset)


def list_events(tx: Tx, query: EventQuery) -> tuple[Event, ...]:
    where: list[sa.ColumnElement[bool]] = [events.c.id > query.after_id]
    if query.job_id is not None:
        where.append(events.c.job_id == query.job_id)
    if query.library_id is not None:
        where.append(events.c.library_id == query.library_id)
    if query.kinds is not None:
        where.append(
            sa.or_(
                sa.false(),
                *(
                    events.c.kind.startswith(k) if k.endswith(".") else events.c.kind == k
                    for k in query.kinds
                ),
            )
        )
    order = events.c.id.desc() if query.newest_first else events.c.id
    rows = (tx.conn.execute(sa.select(events).where(*where).order_by(order).limit(query.limit))).all()
    return tuple(event_from_row(r) for r in rows)


def ping(tx: Tx) -> bool:
    return (tx.conn.execute(sa.select(sa.literal(1)))).scalar() == 1


def running_with_leases(tx: Tx) -> tuple[tuple[Job, object], ...]:
    """Running jobs with their library lease's expiry, for orphan and stall detection."""
    rows = (
        tx.conn.execute(
            sa.select(scan_jobs, library_leases.c.expires_at.label("lease_expires_at"))
            .select_from(
                scan_jobs.outerjoin(library_leases, library_leases.c.library_id == scan_jobs.c.library_id)
            )
            .where(scan_jobs.c.status == "running")
            .order_by(scan_jobs.c.id)
        )
    ).all()
    return tuple((job_from_row(r), r.lease_expires_at) for r in rows)


def job_counts(tx: Tx) -> dict[str, int]:
    """How many jobs are in each status, and how many libraries there are: one read for the status page."""
    rows = (
        tx.conn.execute(sa.select(scan_jobs.c.status, sa.func.count()).group_by(scan_jobs.c.status))
    ).all()
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    counts.update({status: int(n) for status, n in rows})
    counts["libraries"] = (tx.conn.execute(sa.select(sa.func.count()).select_from(libraries))).scalar_one()
    return counts
