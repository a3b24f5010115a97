"""Retention and repair transactions: old jobs and events, orphaned files, stale leases, invariants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from scanguard.records import ACTIVE_STATUSES, FINISHED_STATUSES
from scanguard.store.tables import (
    events,
    libraries,
    library_leases,
    media_files,
    scan_jobs,
)
from scanguard.store.tx import Tx


@dataclass(frozen=True, slots=True)
class Removed:
    """How many rows one cleanup step removed or reset."""

    kind: str
    count: int


def remove_old_jobs(tx: Tx, finished_before: datetime, limit: int) -> Removed:
    """Finished jobs past retention; their media files stay (they belong to the library)."""
    ids = (
        (
            tx.conn.execute(
                sa.select(scan_jobs.c.id)
                .where(scan_jobs.c.status.in_(FINISHED_STATUSES), scan_jobs.c.finished_at < finished_before)
                .order_by(scan_jobs.c.id)
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    if ids:
        tx.conn.execute(
            media_files.update().where(media_files.c.scan_job_id.in_(ids)).values(scan_job_id=None)
        )
        tx.conn.execute(scan_jobs.delete().where(scan_jobs.c.id.in_(ids)))
        tx.event(
            "cleanup.jobs_removed", count=len(ids), job_ids=list(ids), before=finished_before.isoformat()
        )
    return Removed("jobs", len(ids))


def remove_old_events(tx: Tx, before: datetime, limit: int) -> Removed:
    ids = (
        (
            tx.conn.execute(
                sa.select(events.c.id).where(events.c.at < before).order_by(events.c.id).limit(limit)
            )
        )
        .scalars()
        .all()
    )
    if ids:
        tx.conn.execute(events.delete().where(events.c.id.in_(ids)))
        tx.event("cleanup.events_removed", count=len(ids), before=before.isoformat())
    return Removed("events", len(ids))


def remove_orphaned_files(tx: Tx, limit: int) -> Removed:
    """Media files whose library is gone."""
    ids = (
        (
            tx.conn.execute(
                sa.select(media_files.c.id)
                .where(~sa.exists().where(libraries.c.id == media_files.c.library_id))
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    if ids:
        tx.conn.execute(media_files.delete().where(media_files.c.id.in_(ids)))
        tx.event("cleanup.orphaned_files_removed", count=len(ids))
    return Removed("orphaned_files", len(ids))


def remove_orphaned_jobs(tx: Tx) -> Removed:
    """Job rows whose library is gone."""
    ids = (
        (
            tx.conn.execute(
                sa.select(scan_jobs.c.id).where(~sa.exists().where(libraries.c.id == scan_jobs.c.library_id))
            )
        )
        .scalars()
        .all()
    )
    if ids:
        tx.conn.execute(media_files.delete().where(media_files.c.scan_job_id.in_(ids)))
        tx.conn.execute(scan_jobs.delete().where(scan_jobs.c.id.in_(ids)))
        tx.event("cleanup.orphaned_jobs_removed", count=len(ids), job_ids=list(ids))
    return Removed("orphaned_jobs", len(ids))


def release_stale_leases(tx: Tx) -> Removed:
    """Expired leases of libraries with no running job: free them (the token moves on, never back)."""
    running = sa.select(scan_jobs.c.library_id).where(scan_jobs.c.status == "running")
    result = tx.conn.execute(
        library_leases.update()
        .where(
            library_leases.c.owner.is_not(None),
            library_leases.c.expires_at < tx.now,
            library_leases.c.library_id.not_in(running),
        )
        .values(owner=None, expires_at=None, token=library_leases.c.token + 1)
    )
    if result.rowcount:
        tx.event("cleanup.stale_leases_released", count=result.rowcount)
    return Removed("stale_leases", int(result.rowcount))


def invariant_violations(tx: Tx) -> dict[str, list[int]]:
    """Libraries with more than one active job (the index forbids it; checked anyway)."""
    rows = (
        (
            tx.conn.execute(
                sa.select(scan_jobs.c.library_id)
                .where(scan_jobs.c.status.in_(ACTIVE_STATUSES))
                .group_by(scan_jobs.c.library_id)
                .having(sa.func.count() > 1)
            )
        )
        .scalars()
        .all()
    )
    return {"libraries_with_several_active_jobs": list(rows)}
