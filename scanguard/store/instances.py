"""The instances table: each serving process registers, renews its heartbeat on its ticks, and leaves."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from scanguard.records import Instance
from scanguard.store.tables import instances, scan_jobs
from scanguard.store.tx import Tx


def register_instance(tx: Tx, host: str, pid: int, version: str) -> None:
    """This process's row, written at start (its id is the owner it writes on what it runs)."""
    tx.conn.execute(
        instances.insert().values(
            id=tx.instance, host=host, pid=pid, version=version, started_at=tx.now, heartbeat_at=tx.now
        )
    )


def beat_instance(tx: Tx, host: str, pid: int, version: str) -> None:
    """Renew this process's heartbeat; a row lost meanwhile (cleanup, a restored database) is written again."""
    renewed = tx.conn.execute(
        instances.update().where(instances.c.id == tx.instance).values(heartbeat_at=tx.now)
    )
    if renewed.rowcount == 0:
        register_instance(tx, host, pid, version)


def remove_instance(tx: Tx) -> None:
    """A clean shutdown: this process no longer serves."""
    tx.conn.execute(instances.delete().where(instances.c.id == tx.instance))


def list_instances(tx: Tx) -> tuple[Instance, ...]:
    """Every registered instance, oldest first: live while its heartbeat is younger than the lease TTL."""
    rows = (tx.conn.execute(sa.select(instances).order_by(instances.c.started_at))).all()
    running = (
        tx.conn.execute(
            sa.select(scan_jobs.c.owner, scan_jobs.c.id)
            .where(scan_jobs.c.status == "running", scan_jobs.c.owner.is_not(None))
            .order_by(scan_jobs.c.id)
        )
    ).all()
    jobs: dict[str, list[int]] = {}
    for owner, job_id in running:
        jobs.setdefault(owner, []).append(int(job_id))
    horizon = tx.now - timedelta(seconds=tx.lease_ttl)
    return tuple(
        Instance(
            id=r.id,
            host=r.host,
            pid=int(r.pid),
            version=r.version,
            started_at=r.started_at,
            heartbeat_at=r.heartbeat_at,
            live=r.heartbeat_at > horizon,
            jobs=tuple(jobs.get(r.id, ())),
        )
        for r in rows
    )


def remove_gone_instances(tx: Tx, before: datetime) -> int:
    """Retention: rows of instances whose heartbeat stopped before `before` (killed, never cleanly gone)."""
    removed = tx.conn.execute(instances.delete().where(instances.c.heartbeat_at < before))
    return int(removed.rowcount or 0)
