"""Watching's transactions: a library's watch switch, its watcher's lease and state (with the
watch.degraded / watch.recovered events), and the changed paths that wait durably for the next job."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from scanguard.ownership import lease_held_by_another
from scanguard.records import Library
from scanguard.store.queries import get_library
from scanguard.store.tables import libraries, watch_pending
from scanguard.store.tx import Tx, library_from_row

CHUNK = 500  # paths per statement (SQLite's bound-parameter limit, PostgreSQL's statement size)


def set_library_watch(tx: Tx, library_id: int, enabled: bool) -> Library:
    """Switch watching on or off; `library.watch_changed` when it changed. NotFound for an unknown id."""
    before = get_library(tx, library_id)
    if before.watch.enabled != enabled:
        tx.conn.execute(libraries.update().where(libraries.c.id == library_id).values(watch=enabled))
        tx.event("library.watch_changed", library_id=library_id, watch=enabled)
    return get_library(tx, library_id)


def watched_libraries(tx: Tx) -> tuple[Library, ...]:
    """The libraries whose watch is on, without their counts (the keeper's frequent, cheap read)."""
    rows = tx.conn.execute(
        sa.select(libraries).where(libraries.c.watch.is_(sa.true())).order_by(libraries.c.id)
    )
    return tuple(library_from_row(r, now=tx.now) for r in rows)


def claim_watch(tx: Tx, library_id: int, ttl: float) -> bool:
    """Hold (or renew) the library's watch lease for `ttl` seconds: true when this instance holds it.
    One instance watches a library; the others stand by while its owner lives: the one orphan rule of
    every lease (a dead process on this host holds none, at once; another owner until its lease expires)."""
    c = libraries.c
    query = sa.select(c.watch, c.watch_owner, c.watch_expires_at).where(c.id == library_id)
    if tx.dialect == "postgresql":
        query = query.with_for_update()
    row = tx.conn.execute(query).first()
    if row is None or not row.watch:
        return False
    if lease_held_by_another(row.watch_owner, row.watch_expires_at, tx.instance, tx.now):
        return False
    tx.conn.execute(
        libraries.update()
        .where(c.id == library_id)
        .values(watch_owner=tx.instance, watch_expires_at=tx.now + timedelta(seconds=ttl))
    )
    return True


def release_watch(tx: Tx, library_id: int) -> None:
    """Give the lease back (a clean stop): the library reads `off` until a watcher claims it again."""
    tx.conn.execute(
        libraries.update()
        .where(libraries.c.id == library_id, libraries.c.watch_owner == tx.instance)
        .values(watch_owner=None, watch_expires_at=None, watch_state="off", watch_since=tx.now)
    )


def set_watch_state(
    tx: Tx,
    library_id: int,
    state: str,
    reason: str | None,
    message: str | None,
    event: str | None,
    data: dict[str, Any],
) -> bool:
    """Record the watcher's state (only while this instance holds the lease) and, with it, its event
    (`data`: its reason and message)."""
    result = tx.conn.execute(
        libraries.update()
        .where(libraries.c.id == library_id, libraries.c.watch_owner == tx.instance)
        .values(watch_state=state, watch_reason=reason, watch_message=message, watch_since=tx.now)
    )
    if result.rowcount != 1:
        return False
    if event is not None:
        tx.event(event, library_id=library_id, state=state, **data)
    return True


def add_pending(tx: Tx, library_id: int, paths: Iterable[str]) -> int:
    """These changed paths wait for the next job (again: their `since` moves on); how many now wait."""
    rows = [{"library_id": library_id, "path": path, "since": tx.now} for path in dict.fromkeys(paths)]
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        paths_in = [r["path"] for r in chunk]
        tx.conn.execute(
            watch_pending.delete().where(
                watch_pending.c.library_id == library_id, watch_pending.c.path.in_(paths_in)
            )
        )
        tx.conn.execute(watch_pending.insert(), chunk)
    return pending_count(tx, library_id)


def pending_count(tx: Tx, library_id: int) -> int:
    count = tx.conn.execute(
        sa.select(sa.func.count()).select_from(watch_pending).where(watch_pending.c.library_id == library_id)
    ).scalar_one()
    return int(count)


def pending_paths(tx: Tx, library_id: int, limit: int) -> tuple[tuple[str, ...], datetime]:
    """Up to `limit` waiting paths in path order, and the time of this read (what a job took, it removes)."""
    rows = tx.conn.execute(
        sa.select(watch_pending.c.path)
        .where(watch_pending.c.library_id == library_id)
        .order_by(watch_pending.c.path)
        .limit(limit)
    ).all()
    return tuple(r.path for r in rows), tx.now


def take_pending(tx: Tx, library_id: int, paths: tuple[str, ...] | None, upto: datetime) -> int:
    """Remove the waiting paths a job was started for (all of them when `paths` is None), unless they
    changed again after `upto`; how many still wait."""
    c = watch_pending.c
    where = [c.library_id == library_id, c.since <= upto]
    if paths is None:
        tx.conn.execute(watch_pending.delete().where(*where))
    else:
        for start in range(0, len(paths), CHUNK):
            tx.conn.execute(watch_pending.delete().where(*where, c.path.in_(paths[start : start + CHUNK])))
    return pending_count(tx, library_id)
