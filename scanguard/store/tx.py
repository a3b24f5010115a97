"""One transaction's context: the connection, the clock, the instance, and the events it writes (outbox)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from scanguard.records import WATCH_STATES, Event, Job, Library, LibraryWatch, MediaFile, WatchState
from scanguard.store.tables import events, scan_jobs


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Tx:
    """The open transaction an operation runs in; events it records commit with it."""

    conn: sa.Connection
    instance: str
    lease_ttl: float
    now: datetime = field(default_factory=utcnow)
    events: list[Event] = field(default_factory=list)

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    @property
    def lease_expiry(self) -> datetime:
        return self.now + timedelta(seconds=self.lease_ttl)

    def event(
        self, kind: str, /, *, library_id: int | None = None, job_id: int | None = None, **data: Any
    ) -> Event:
        """Write one event row in this transaction; it is published after commit."""
        result = self.conn.execute(
            events.insert().values(
                at=self.now,
                kind=kind,
                library_id=library_id,
                job_id=job_id,
                instance=self.instance,
                data=data,
            )
        )
        (event_id,) = result.inserted_primary_key or (0,)
        record = Event(int(event_id), self.now, kind, library_id, job_id, self.instance, data)
        self.events.append(record)
        return record


def job_from_row(row: sa.Row[Any]) -> Job:
    m = row._mapping
    return Job(
        id=m["id"],
        library_id=m["library_id"],
        status=m["status"],
        files_found=m["files_found"],
        files_processed=m["files_processed"],
        files_skipped=m["files_skipped"],
        files_removed=m["files_removed"],
        files_changed=m["files_changed"],
        bytes_processed=m["bytes_processed"],
        errors=m["errors"],
        total_estimate=m["total_estimate"],
        progress=m["progress"],
        checkpoint=m["checkpoint"],
        skip_reasons=dict(m["skip_reasons"] or {}),
        heartbeat_at=m["heartbeat_at"],
        owner=m["owner"],
        fencing_token=m["fencing_token"],
        restarts=m["restarts"],
        last_error=m["last_error"],
        pause_reason=m["pause_reason"],
        active_seconds=m["active_seconds"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        updated_at=m["updated_at"],
        finished_at=m["finished_at"],
        retry_failed=bool(m["retry_failed"]),
        scope=tuple(m["scope"] or ()),
        trigger=m["trigger"],
        files_moved=m["files_moved"],
    )


def library_from_row(
    row: sa.Row[Any], media_files: int = 0, pending: int = 0, now: datetime | None = None
) -> Library:
    m = row._mapping
    return Library(
        m["id"],
        m["path"],
        m["name"],
        m["kind"],
        m["created_at"],
        media_files,
        watch_from_row(m, pending, now),
    )


def watch_from_row(m: Any, pending: int, now: datetime | None) -> LibraryWatch:
    """A library's watch as its row says; a watcher whose lease ran out (or none) reads as `off`."""
    if not m["watch"]:
        return LibraryWatch(False, "off", pending=pending)
    expires = m["watch_expires_at"]
    if m["watch_owner"] is None or expires is None or (now is not None and expires < now):
        return LibraryWatch(
            True, "off", "not_watched", "no running instance watches this library", expires, pending
        )
    state: WatchState = next((s for s in WATCH_STATES if s == m["watch_state"]), "starting")
    return LibraryWatch(True, state, m["watch_reason"], m["watch_message"], m["watch_since"], pending)


def file_from_row(row: sa.Row[Any]) -> MediaFile:
    m = row._mapping
    return MediaFile(
        id=m["id"],
        library_id=m["library_id"],
        scan_job_id=m["scan_job_id"],
        path=m["path"],
        size=m["size"],
        mtime=m["mtime"],
        media_type=m["media_type"],
        quick_hash=m["quick_hash"],
        first_seen_at=m["first_seen_at"],
        last_seen_at=m["last_seen_at"],
        missing_since=m["missing_since"],
        error=m["error"],
        meta=m["meta"],
    )


def event_from_row(row: sa.Row[Any]) -> Event:
    m = row._mapping
    return Event(
        m["id"], m["at"], m["kind"], m["library_id"], m["job_id"], m["instance"], dict(m["data"] or {})
    )


def load_job(conn: sa.Connection, job_id: int, *, for_update: bool = False) -> Job | None:
    query = sa.select(scan_jobs).where(scan_jobs.c.id == job_id)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (conn.execute(query)).first()
    return None if row is None else job_from_row(row)
