"""Library transactions: a library added, or removed with its jobs, files, lease and waiting paths; and
decisions recorded as events with no row change of their own."""

from __future__ import annotations

import sqlalchemy as sa

from scanguard.errors import LibraryExists
from scanguard.records import Event, Library, RemovedLibrary
from scanguard.store.leases import release_lease
from scanguard.store.queries import get_library
from scanguard.store.tables import libraries, library_leases, media_files, scan_jobs, watch_pending
from scanguard.store.tx import Tx


def add_library(tx: Tx, path: str, name: str, kind: str, watch: bool = True) -> Library:
    existing = (tx.conn.execute(sa.select(libraries.c.id).where(libraries.c.path == path))).scalar()
    if existing is not None:
        raise LibraryExists(path, existing)
    result = tx.conn.execute(
        libraries.insert().values(path=path, name=name, kind=kind, created_at=tx.now, watch=watch)
    )
    (library_id,) = result.inserted_primary_key or (0,)
    tx.event("library.added", library_id=library_id, path=path, name=name, kind=kind, watch=watch)
    return get_library(tx, int(library_id))


def remove_library(tx: Tx, library_id: int) -> RemovedLibrary:
    """The library, its jobs, its files and its lease, in one transaction."""
    get_library(tx, library_id)
    release_lease(tx, library_id)
    files = tx.conn.execute(media_files.delete().where(media_files.c.library_id == library_id))
    jobs = tx.conn.execute(scan_jobs.delete().where(scan_jobs.c.library_id == library_id))
    tx.conn.execute(library_leases.delete().where(library_leases.c.library_id == library_id))
    tx.conn.execute(watch_pending.delete().where(watch_pending.c.library_id == library_id))
    tx.conn.execute(libraries.delete().where(libraries.c.id == library_id))
    tx.event(
        "library.removed",
        library_id=library_id,
        jobs_removed=jobs.rowcount,
        media_files_removed=files.rowcount,
    )
    return RemovedLibrary(library_id, jobs.rowcount, files.rowcount)


def record_event(
    tx: Tx, kind: str, library_id: int | None, job_id: int | None, data: dict[str, object]
) -> Event:
    """A decision with no row change of its own (an alert, a validator finding)."""
    return tx.event(kind, library_id=library_id, job_id=job_id, **data)
