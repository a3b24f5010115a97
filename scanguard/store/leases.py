"""Library leases and fencing tokens: the cross-instance lock, and the check every scan write passes."""

from __future__ import annotations

import sqlalchemy as sa

from scanguard.errors import Fenced, LibraryBusy
from scanguard.ownership import lease_held_by_another
from scanguard.records import ACTIVE_STATUSES, Job
from scanguard.store.tables import library_leases, scan_jobs
from scanguard.store.tx import Tx, load_job


def active_job_id(tx: Tx, library_id: int) -> int | None:
    return (
        tx.conn.execute(
            sa.select(scan_jobs.c.id).where(
                scan_jobs.c.library_id == library_id, scan_jobs.c.status.in_(ACTIVE_STATUSES)
            )
        )
    ).scalar()


def acquire_lease(tx: Tx, library_id: int) -> int:
    """Take the library's lease for this instance and return its new token (tokens only grow)."""
    query = sa.select(library_leases).where(library_leases.c.library_id == library_id)
    if tx.dialect == "postgresql":
        query = query.with_for_update()
    row = (tx.conn.execute(query)).first()
    if row is None:
        tx.conn.execute(
            library_leases.insert().values(
                library_id=library_id, owner=tx.instance, token=1, expires_at=tx.lease_expiry
            )
        )
        return 1
    lease = row._mapping
    if lease_held_by_another(lease["owner"], lease["expires_at"], tx.instance, tx.now):
        raise LibraryBusy(library_id, active_job_id(tx, library_id), lease["owner"])
    token = int(lease["token"]) + 1
    tx.conn.execute(
        library_leases.update()
        .where(library_leases.c.library_id == library_id)
        .values(owner=tx.instance, token=token, expires_at=tx.lease_expiry)
    )
    return token


def release_lease(tx: Tx, library_id: int) -> None:
    """Free the lease at once (no wait for expiry) and move the token on, fencing any late writer."""
    tx.conn.execute(
        library_leases.update()
        .where(library_leases.c.library_id == library_id)
        .values(owner=None, expires_at=None, token=library_leases.c.token + 1)
    )


def fence(tx: Tx, job_id: int, library_id: int, token: int) -> Job:
    """Renew the lease and check the job, or raise Fenced: a stale writer commits nothing."""
    renewed = tx.conn.execute(
        library_leases.update()
        .where(
            library_leases.c.library_id == library_id,
            library_leases.c.token == token,
            library_leases.c.owner == tx.instance,
        )
        .values(expires_at=tx.lease_expiry)
    )
    job = load_job(tx.conn, job_id, for_update=True)
    if renewed.rowcount != 1 or job is None or job.status != "running" or job.fencing_token != token:
        raise Fenced(job_id, token)
    return job
