"""The event listener: LISTEN scanguard_events on PostgreSQL, read each announced event, hand it on.

Every committed event is announced by a trigger (NOTIFY, its id as the payload). The listener reads the
announced rows by id — so events of other instances that commit out of id order are not skipped — and
hands the ones written by other instances to `deliver` (this instance's own are published by its store).
A lost connection (a restart, pg_terminate_backend, a cut network) is noticed by a keepalive query,
reconnected with backoff, and followed by a replay of every event after the last id it saw — and of the
ids below it that it has not seen yet: ids are handed out before commit, so one taken early may commit
after a higher one was heard, while the connection is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC
from typing import Any

import asyncpg
import structlog

from scanguard.backoff import RECONNECT
from scanguard.records import Event
from scanguard.store.engine import driver_dsn

log = structlog.get_logger("scanguard.store.notify")
CHANNEL = "scanguard_events"
REPLAY_PAGE = 500
KEEPALIVE = 1.0
REMEMBERED = 10_000  # ids already handed on, so that a replay after an announcement never repeats one
_COLUMNS = "id, at, kind, library_id, job_id, instance, data"

Deliver = Callable[[tuple[Event, ...]], None]


def _event(row: asyncpg.Record) -> Event:
    data = row["data"]
    if isinstance(data, str):
        data = json.loads(data)
    at = row["at"]
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return Event(
        int(row["id"]), at, row["kind"], row["library_id"], row["job_id"], row["instance"], dict(data or {})
    )


class EventListener:
    """Owns one dedicated PostgreSQL connection and the thread that listens on it, until stopped."""

    def __init__(self, url: str, instance: str, deliver: Deliver, *, connect_timeout: float = 5.0) -> None:
        self._dsn = driver_dsn(url)
        self._instance = instance
        self._deliver = deliver
        self._connect_timeout = connect_timeout
        self.application_name = f"scanguard-listener:{os.getpid()}"
        self.last_id: int | None = None
        self.connected = threading.Event()
        self.reconnects = 0
        self._sessions = 0  # connections that got as far as listening
        self._seen: deque[int] = deque(maxlen=REMEMBERED)
        self._seen_set: set[int] = set()
        self._gaps: set[int] = set()  # ids below last_id not heard yet (in flight, or rolled back)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="scanguard-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def status(self) -> dict[str, Any]:
        """For the status page: whether it listens now, the last event id it saw, how often it reconnected."""
        return {"connected": self.connected.is_set(), "last_id": self.last_id, "reconnects": self.reconnects}

    def stop(self, timeout: float = 5.0) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
        if self._thread.ident is not None:  # it started (a start that failed half-way may not have)
            self._thread.join(timeout)

    # ---- the listening thread ---------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        attempt = 0
        while not self._stopping.is_set():
            sessions = self._sessions
            try:
                await self._session()
            except Exception as exc:  # noqa: BLE001 - the listener's boundary: log, back off, reconnect
                if self._sessions != sessions:
                    attempt = 0  # it was listening before it failed: the backoff starts over
                self.connected.clear()
                delay = RECONNECT.delay(attempt)
                attempt += 1
                log.warning(
                    "events.listener_lost", error=f"{type(exc).__name__}: {exc}", retry_in=round(delay, 3)
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)

    async def _session(self) -> None:
        """One connection's life: LISTEN, catch up from the last id, then follow until it fails or stops."""
        assert self._stopping is not None
        conn = await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            server_settings={"application_name": self.application_name},
        )
        announced: asyncio.Queue[int] = asyncio.Queue()
        lost = asyncio.Event()

        def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            if payload.isdigit():
                announced.put_nowait(int(payload))

        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, on_notify)
            if self.last_id is None:
                self.last_id = int(await conn.fetchval("SELECT COALESCE(MAX(id), 0) FROM events"))
            else:
                self.reconnects += 1
                await self._replay(conn)
            self.connected.set()
            self._sessions += 1
            log.info("events.listening", last_id=self.last_id, reconnects=self.reconnects)
            while not self._stopping.is_set():
                ids = await self._next_ids(announced, lost)
                if lost.is_set():
                    raise asyncpg.InterfaceError("the listening connection was closed")
                if ids:
                    await self._read(conn, ids)
                else:
                    await conn.fetchval("SELECT 1", timeout=KEEPALIVE * 5)  # notices a dead link
        finally:
            self.connected.clear()
            with contextlib.suppress(Exception):  # the connection may be gone already
                await asyncio.wait_for(conn.close(), 1.0)

    async def _next_ids(self, announced: asyncio.Queue[int], lost: asyncio.Event) -> list[int]:
        """The ids announced so far (waiting up to KEEPALIVE for the first one); [] after a quiet spell."""
        assert self._stopping is not None
        if announced.empty():
            waiters = [
                asyncio.ensure_future(announced.get()),
                asyncio.ensure_future(lost.wait()),
                asyncio.ensure_future(self._stopping.wait()),
            ]
            done, pending = await asyncio.wait(
                waiters, timeout=KEEPALIVE, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()
            first = waiters[0]
            if first not in done:
                return []
            ids = [first.result()]
        else:
            ids = []
        while not announced.empty():
            ids.append(announced.get_nowait())
        return ids

    async def _read(self, conn: asyncpg.Connection, ids: Iterable[int]) -> None:
        wanted = sorted({i for i in ids if i not in self._seen_set})
        if not wanted:
            return
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE id = ANY($1::int[]) ORDER BY id", wanted
        )
        self._hand_on([_event(r) for r in rows])

    async def _replay(self, conn: asyncpg.Connection) -> None:
        """After a reconnect: the unheard ids below the last id seen that committed meanwhile, then every
        event after the last id seen, page by page."""
        gaps = sorted(self._gaps)
        late = 0
        if gaps:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM events WHERE id = ANY($1::int[]) ORDER BY id", gaps
            )
            late = len(rows)
            self._hand_on([_event(r) for r in rows])
        while True:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT {REPLAY_PAGE}",
                self.last_id or 0,
            )
            events = [e for e in map(_event, rows) if e.id not in self._seen_set]
            self._hand_on(events)
            if rows:
                self.last_id = max(self.last_id or 0, int(rows[-1]["id"]))
            if len(rows) < REPLAY_PAGE:
                log.info("events.replayed", last_id=self.last_id, committed_late=late)
                return

    def _hand_on(self, events: list[Event]) -> None:
        for event in events:
            if len(self._seen) == self._seen.maxlen:
                self._seen_set.discard(self._seen[0])
            self._seen.append(event.id)
            self._seen_set.add(event.id)
            self._gaps.discard(event.id)
            last = self.last_id or 0
            if event.id > last + 1:
                self._gaps.update(range(max(last + 1, event.id - REMEMBERED), event.id))
            self.last_id = max(last, event.id)
        if len(self._gaps) > REMEMBERED:  # the oldest are rolled back, or too old to wait for
            self._gaps = set(sorted(self._gaps)[-REMEMBERED:])
        remote = tuple(e for e in events if e.instance != self._instance)
        if remote:
            try:
                self._deliver(remote)
            except Exception:  # the listener's boundary: a delivery failure must not end it
                log.exception("events.deliver_failed", count=len(remote))
