"""Event routes: the events table, paged and filtered, and the same as a Server-Sent Events stream.

A `family` groups the kinds an operator reads together (`job`: a job's life and every safeguard decision
about it), so thousands of per-file events never bury the rest. The stream subscribes to the Runtime's event bus first, then replays from the table what the client
missed (`Last-Event-ID`, or `after_id`), so nothing falls between the two; a reader too slow for the
live queue is caught up from the table again. Progress snapshots (no id) ride along as `event: progress`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
import structlog
from aiohttp import web

from scanguard.errors import BadRequest, ScanguardError
from scanguard.http.middlewares import STREAM_ROUTE
from scanguard.http.params import EventFilter, EventsQuery, StreamQuery, query
from scanguard.http.schemas import EventList, reply
from scanguard.http.state import runtime_of, slot_of
from scanguard.records import MAX_ID, Event, EventQuery, event_kinds
from scanguard.runtime import Runtime
from scanguard.store.reads import ListEvents

log = structlog.get_logger("scanguard.http.events")
routes = web.RouteTableDef()
LIVE_QUEUE = 1000
REPLAY_PAGE = 500
SENT_REMEMBERED = 10_000


def _filter(asked: EventFilter) -> EventQuery:
    """The events a request wants (one job's, one library's, of a kind and a family), without its page."""
    return EventQuery(asked.job_id, asked.library_id, event_kinds(asked.kind, asked.family))


async def _read(
    rt: Runtime, wanted: EventQuery, *, after_id: int, limit: int, newest_first: bool
) -> list[Event]:
    """A page of the events table for the request's filter: one read."""
    query = dataclasses.replace(wanted, after_id=after_id, limit=limit, newest_first=newest_first)
    return list(await rt.aio.read(ListEvents(query)))


@routes.get("/api/admin/events", name="list_events")
async def list_events(request: web.Request) -> web.Response:
    asked = query(request, EventsQuery)
    events = await _read(
        runtime_of(request),
        _filter(asked),
        after_id=asked.after_id,
        limit=asked.limit,
        newest_first=asked.newest_first,
    )
    return reply(EventList(tuple(events)))


def _frame(event: Event) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.kind.encode(), msgspec.json.encode(event))


def _last_event_id(request: web.Request, asked: StreamQuery) -> int | None:
    header = request.headers.get("Last-Event-ID")
    if header is None:
        return asked.after_id
    header = header.strip()
    if not header.isdigit() or not header.isascii() or int(header) > MAX_ID:
        raise BadRequest(f"Last-Event-ID must be an event id, got {header[:40]!r}", field="Last-Event-ID")
    return int(header)


class _Live:
    """The bridge from the event bus's thread into this stream's loop, with overflow detection."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=LIVE_QUEUE)
        self.overflowed = False
        self.lowest_dropped = MAX_ID  # the lowest id the overflow dropped: the catch-up starts below it
        self.wake = asyncio.Event()

    def on_event(self, event: Event) -> None:  # runs on the event bus's thread
        with contextlib.suppress(RuntimeError):  # the loop is closing: the stream is gone anyway
            self.loop.call_soon_threadsafe(self._put, event)

    def _put(self, event: Event) -> None:
        if self.queue.full():
            self.overflowed = True
            self.lowest_dropped = min(self.lowest_dropped, event.id)
        else:
            self.queue.put_nowait(event)
        self.wake.set()


async def _replay(
    rt: Runtime,
    response: web.StreamResponse,
    wanted: EventQuery,
    after: int,
    sent: Callable[[int], None] | None = None,
    fresh: Callable[[Event], bool] | None = None,
) -> int:
    """Send every stored event after `after` (that is `fresh`, when given); return the last id read."""
    while True:
        batch = await _read(rt, wanted, after_id=after, limit=REPLAY_PAGE, newest_first=False)
        for event in batch:
            after = event.id
            if fresh is not None and not fresh(event):
                continue
            await response.write(_frame(event))
            if sent is not None:
                sent(event.id)
        if len(batch) < REPLAY_PAGE:
            return after


async def _newest_id(rt: Runtime) -> int:
    newest = await rt.aio.events(limit=1, newest_first=True)
    return newest[0].id if newest else 0


class _Stream:
    """One SSE connection: live events from the bus, progress snapshots, heartbeats, until the client goes."""

    def __init__(self, request: web.Request, wanted: EventQuery) -> None:
        self.rt = runtime_of(request)
        self.slot = slot_of(request)
        self.wanted = wanted
        self.live = _Live(asyncio.get_running_loop())
        self.progress = self.slot.progress.subscribe() if self.slot.progress is not None else None
        self.last = 0
        # with several instances, events commit out of id order: a live event below the newest id sent
        # is still new unless it was sent already (or predates the stream)
        self.floor = 0
        self._sent: deque[int] = deque(maxlen=SENT_REMEMBERED)
        self._sent_set: set[int] = set()

    def _mark(self, event_id: int) -> None:
        if len(self._sent) == self._sent.maxlen:
            self._sent_set.discard(self._sent[0])
        self._sent.append(event_id)
        self._sent_set.add(event_id)
        self.last = max(self.last, event_id)

    def _fresh(self, event: Event) -> bool:
        return event.id > self.floor and event.id not in self._sent_set

    async def run(self, response: web.StreamResponse, resume_from: int | None) -> None:
        if resume_from is not None:
            self.last = await _replay(self.rt, response, self.wanted, resume_from, self._mark)
        else:
            self.last = await _newest_id(self.rt)
        self.floor = self.last
        while not self.slot.closing.is_set():
            await self._send_live(response)
            await self._send_progress(response)
            if not await self._wait():
                await response.write(b": heartbeat\n\n")

    async def _send_live(self, response: web.StreamResponse) -> None:
        live = self.live
        if live.overflowed:  # too slow for the queue: catch up from the table instead
            # from below the lowest id dropped, not only after the newest sent: with several instances a
            # lower id may commit after a higher one was sent; what was sent already is not sent again
            lowest = live.lowest_dropped
            live.overflowed, live.lowest_dropped = False, MAX_ID
            while not live.queue.empty():
                lowest = min(lowest, live.queue.get_nowait().id)
            start = max(self.floor, min(self.last, lowest - 1))
            log.info("events.stream_overflowed", replay_after=start, last_sent=self.last)
            await _replay(self.rt, response, self.wanted, start, self._mark, self._fresh)
        while not live.queue.empty():
            event = live.queue.get_nowait()
            if self._fresh(event) and self.wanted.matches(event):
                await response.write(_frame(event))
                self._mark(event.id)
            if event.kind.startswith("job.") and self.slot.progress is not None:
                self.slot.progress.poke()

    async def _send_progress(self, response: web.StreamResponse) -> None:
        while self.progress is not None and not self.progress.empty():
            data = json.dumps({"jobs": self.progress.get_nowait()}, separators=(",", ":"))
            await response.write(f"event: progress\ndata: {data}\n\n".encode())

    async def _wait(self) -> bool:
        """Wait for something to send; False after a quiet heartbeat interval."""
        if not self.live.queue.empty() or self.live.overflowed:
            return True
        waiters: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self.live.wake.wait()),
            asyncio.ensure_future(self.slot.closing.wait()),
        ]
        if self.progress is not None:
            waiters.append(asyncio.ensure_future(_wait_nonempty(self.progress)))
        done, pending = await asyncio.wait(
            waiters, timeout=self.slot.sse_heartbeat, return_when=asyncio.FIRST_COMPLETED
        )
        for waiter in pending:
            waiter.cancel()
        self.live.wake.clear()
        return bool(done)

    async def close(self) -> None:
        if self.progress is not None and self.slot.progress is not None:
            self.slot.progress.unsubscribe(self.progress)


@routes.get("/api/admin/events/stream", name=STREAM_ROUTE)
async def events_stream(request: web.Request) -> web.StreamResponse:
    asked = query(request, StreamQuery)
    resume_from = _last_event_id(request, asked)
    stream = _Stream(request, _filter(asked))
    subscription = await stream.rt.aio.subscribe(stream.live.on_event)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        await stream.run(response, resume_from)
    except ConnectionResetError:
        log.debug("events.stream_closed", peer=request.remote)
    except ScanguardError as exc:  # the headers are gone: say it in the stream, then end it
        log.info("events.stream_ended", error=exc.message)
        with contextlib.suppress(ConnectionResetError):
            await response.write(f"event: error\ndata: {json.dumps(exc.to_dict())}\n\n".encode())
    finally:
        await stream.close()
        with contextlib.suppress(ScanguardError):
            await asyncio.shield(stream.rt.aio.unsubscribe(subscription))
    return response


async def _wait_nonempty(queue: asyncio.Queue[Any]) -> None:
    item = await queue.get()
    queue.put_nowait(item)  # put it back for the writer: only the wake-up is wanted here
