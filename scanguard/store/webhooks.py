"""Webhook cursors: claimed under a lease with a fencing token, advanced after a 2xx, dead deliveries.

Delivery order is the events' id order on SQLite (one writer at a time, so ids commit in order). On
PostgreSQL several instances commit concurrently and an id can become visible after a higher one, so the
order is (inserting transaction id, event id), and only events whose transaction is older than every
transaction still open in this database are read: a cursor never passes an event that has yet to commit.
(Open transactions of other databases on the same server do not hold deliveries back.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from scanguard.ownership import lease_held_by_another
from scanguard.store.tables import events, webhook_cursors, webhook_dead_letters
from scanguard.store.tx import Tx, event_from_row
from scanguard.webhooks.records import DeadLetter, Lease, Pending, Position, WebhookState

DEAD_LETTERS_SHOWN = 10


def _kinds(prefixes: Sequence[str]) -> sa.ColumnElement[bool]:
    return sa.or_(*(events.c.kind.startswith(prefix, autoescape=True) for prefix in prefixes))


# The oldest transaction id still open in this database (pg_stat_activity's 32-bit xid, widened to the
# 64-bit form events.tx holds with the epoch of the snapshot's xmax), else that xmax: every transaction
# below it has ended, so a later statement sees all of its events.
_HORIZON = sa.text(
    """
    WITH s AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax)
    SELECT COALESCE(
        min((s.xmax >> 32 << 32) + a.backend_xid::text::bigint
            - CASE WHEN a.backend_xid::text::bigint > (s.xmax & 4294967295) THEN 4294967296 ELSE 0 END),
        max(s.xmax))
    FROM s LEFT JOIN pg_stat_activity a ON a.datname = current_database() AND a.backend_xid IS NOT NULL
    """
)


def _after(tx: Tx, position: Position) -> list[sa.ColumnElement[bool]]:
    """Events after `position` in delivery order."""
    tx_id, event_id = position
    if tx.dialect != "postgresql":
        return [events.c.id > event_id]
    return [sa.or_(events.c.tx > tx_id, sa.and_(events.c.tx == tx_id, events.c.id > event_id))]


def _order(tx: Tx) -> list[sa.ColumnElement[int]]:
    return [events.c.tx, events.c.id] if tx.dialect == "postgresql" else [events.c.id]


def _newest(tx: Tx) -> Position:
    order = [c.desc() for c in _order(tx)]
    row = (tx.conn.execute(sa.select(events.c.tx, events.c.id).order_by(*order).limit(1))).first()
    if row is None:
        return (0, 0)
    return (int(row.tx or 0) if tx.dialect == "postgresql" else 0, int(row.id))


def ensure_cursor(tx: Tx, name: str) -> None:
    """A webhook seen for the first time starts at the newest event: it receives what happens from now on."""
    if (tx.conn.execute(sa.select(webhook_cursors.c.name).where(webhook_cursors.c.name == name))).first():
        return
    tx_id, event_id = _newest(tx)
    # each dialect's insert is imported when first used: a SQLite process never loads the PostgreSQL one
    insert: Any
    if tx.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

        insert = pg_insert(webhook_cursors)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

        insert = sqlite_insert(webhook_cursors)
    tx.conn.execute(
        insert.values(name=name, cursor=event_id, cursor_tx=tx_id, created_at=tx.now).on_conflict_do_nothing()
    )


def claim(tx: Tx, name: str) -> Lease | None:
    """Take or renew this instance's lease on the cursor; None while another live instance holds it."""
    query = sa.select(webhook_cursors).where(webhook_cursors.c.name == name)
    if tx.dialect == "postgresql":
        query = query.with_for_update()
    row = (tx.conn.execute(query)).first()
    if row is None:
        return None
    m = row._mapping
    if lease_held_by_another(m["owner"], m["lease_expires_at"], tx.instance, tx.now):
        return None  # a live owner's lease (a dead process on this host holds none: taken at once)
    live = m["lease_expires_at"] is not None and m["lease_expires_at"] > tx.now
    token = int(m["token"]) if m["owner"] == tx.instance and live else int(m["token"]) + 1
    tx.conn.execute(
        webhook_cursors.update()
        .where(webhook_cursors.c.name == name)
        .values(owner=tx.instance, token=token, lease_expires_at=tx.lease_expiry)
    )
    return Lease(token, (int(m["cursor_tx"]), int(m["cursor"])))


def _held(name: str, tx: Tx, token: int) -> sa.ColumnElement[bool]:
    return sa.and_(
        webhook_cursors.c.name == name,
        webhook_cursors.c.owner == tx.instance,
        webhook_cursors.c.token == token,
    )


def release(tx: Tx, name: str, token: int) -> None:
    """Give the lease up at once, so another instance can go on without waiting for it to expire."""
    tx.conn.execute(
        webhook_cursors.update().where(_held(name, tx, token)).values(owner=None, lease_expires_at=None)
    )


def delivered(tx: Tx, name: str, token: int, position: Position) -> bool:
    """A 2xx came back: move the cursor (and renew the lease). False when the lease has moved on."""
    result = tx.conn.execute(
        webhook_cursors.update()
        .where(_held(name, tx, token))
        .values(
            cursor_tx=position[0],
            cursor=position[1],
            lease_expires_at=tx.lease_expiry,
            delivered=webhook_cursors.c.delivered + 1,
            last_success_at=tx.now,
        )
    )
    return result.rowcount == 1


def skipped(tx: Tx, name: str, token: int, position: Position) -> bool:
    """An event this webhook is never sent (an alert about its own failures): the cursor moves past it."""
    result = tx.conn.execute(
        webhook_cursors.update()
        .where(_held(name, tx, token))
        .values(cursor_tx=position[0], cursor=position[1], lease_expires_at=tx.lease_expiry)
    )
    return result.rowcount == 1


def attempt_failed(tx: Tx, name: str, token: int, error: str) -> bool:
    """One attempt failed (it will be retried): counted, and shown as the last failure."""
    result = tx.conn.execute(
        webhook_cursors.update()
        .where(_held(name, tx, token))
        .values(
            lease_expires_at=tx.lease_expiry,
            failed_attempts=webhook_cursors.c.failed_attempts + 1,
            last_failure_at=tx.now,
            last_error=error[:2000],
        )
    )
    return result.rowcount == 1


def buried(tx: Tx, pending: Pending, name: str, token: int, attempts: int, error: str) -> bool:
    """The last attempt failed: record the dead delivery, raise `alert.webhook_failing`, move the cursor on."""
    event = pending.event
    result = tx.conn.execute(
        webhook_cursors.update()
        .where(_held(name, tx, token))
        .values(
            cursor_tx=pending.position[0],
            cursor=pending.position[1],
            lease_expires_at=tx.lease_expiry,
            dead=webhook_cursors.c.dead + 1,
        )
    )
    if result.rowcount != 1:
        return False
    tx.conn.execute(
        webhook_dead_letters.insert().values(
            webhook=name, event_id=event.id, kind=event.kind, attempts=attempts, error=error[:2000], at=tx.now
        )
    )
    tx.event(
        "alert.webhook_failing",
        webhook=name,
        event_id=event.id,
        event_kind=event.kind,
        attempts=attempts,
        error=error[:500],
    )
    return True


def pending_events(tx: Tx, position: Position, prefixes: Sequence[str], limit: int) -> tuple[Pending, ...]:
    """The next events of these kinds after `position`, in delivery order (on PostgreSQL, only those of
    transactions that had ended when this read began: the horizon is read first, the events after it)."""
    settled: list[sa.ColumnElement[bool]] = []
    if tx.dialect == "postgresql":
        horizon = int((tx.conn.execute(_HORIZON)).scalar_one())
        settled.append(events.c.tx < horizon)
    rows = (
        tx.conn.execute(
            sa.select(events)
            .where(*_after(tx, position), *settled, _kinds(prefixes))
            .order_by(*_order(tx))
            .limit(limit)
        )
    ).all()
    return tuple(
        Pending(event_from_row(r), (int(r.tx or 0) if tx.dialect == "postgresql" else 0, int(r.id)))
        for r in rows
    )


def states(tx: Tx, hooks: Sequence[tuple[str, Sequence[str]]]) -> tuple[WebhookState, ...]:
    """Each webhook's cursor, lease, counters, lag (events of its kinds not yet delivered) and dead letters."""
    out: list[WebhookState] = []
    for name, prefixes in hooks:
        row = (tx.conn.execute(sa.select(webhook_cursors).where(webhook_cursors.c.name == name))).first()
        if row is None:
            out.append(WebhookState(name, 0, 0, None, None, 0, 0, 0, None, None, None))
            continue
        m = row._mapping
        tx_id, event_id = int(m["cursor_tx"]), int(m["cursor"])
        after = _after(tx, (tx_id, event_id))
        lag = (
            tx.conn.execute(sa.select(sa.func.count()).select_from(events).where(*after, _kinds(prefixes)))
        ).scalar_one()
        dead = (
            tx.conn.execute(
                sa.select(webhook_dead_letters)
                .where(webhook_dead_letters.c.webhook == name)
                .order_by(webhook_dead_letters.c.id.desc())
                .limit(DEAD_LETTERS_SHOWN)
            )
        ).all()
        out.append(
            WebhookState(
                name=name,
                cursor=event_id,
                lag=int(lag),
                owner=m["owner"]
                if m["lease_expires_at"] is not None and m["lease_expires_at"] > tx.now
                else None,
                lease_expires_at=m["lease_expires_at"],
                delivered=int(m["delivered"]),
                failed_attempts=int(m["failed_attempts"]),
                dead=int(m["dead"]),
                last_success_at=m["last_success_at"],
                last_failure_at=m["last_failure_at"],
                last_error=m["last_error"],
                dead_deliveries=tuple(
                    DeadLetter(d.event_id, d.kind, d.attempts, d.error, d.at) for d in dead
                ),
            )
        )
    return tuple(out)
