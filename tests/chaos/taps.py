"""The soak's ears: every instance slot's /api/admin/events/stream followed by one thread, with reconnects.

One thread runs one event loop with one aiohttp task per slot, so the readers stay bounded however often
instances die and come back. A task connects to whatever address its slot has now, resumes with
Last-Event-ID after the first connection, and records when each event id first arrived on that slot.
Times are wall-clock seconds (time.time()), the clock the events' own `at` is written in on this host.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from tests.support.sse import FrameParser

STREAM = "/api/admin/events/stream"
CONNECT_TIMEOUT = 5.0  # a frozen instance accepts the connection (the kernel does) and never answers
RETRY = 0.2


@dataclass(frozen=True, slots=True)
class Seen:
    """An event as a tap first saw it: when its transaction began, what it is, who wrote it, first arrival."""

    at: float
    kind: str
    instance: str
    first: float


@dataclass(slots=True)
class Segment:
    """One streaming connection of a slot: to which address, from when to when, and resuming after which id."""

    base: str
    start: float
    resumed_after: int | None
    end: float | None = None


@dataclass(slots=True)
class TapRecord:
    """What the taps heard: arrivals per slot, every event once, the connections, and error frames."""

    arrivals: list[dict[int, float]]
    events: dict[int, Seen] = field(default_factory=dict)
    segments: list[list[Segment]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


class StreamTaps:
    """Owns one thread and its event loop, which follow every slot's event stream until `stop`."""

    def __init__(self, bases: Sequence[Callable[[], str]], token: str) -> None:
        self._bases = list(bases)
        self._token = token
        self._lock = threading.Lock()
        self._record = TapRecord([{} for _ in self._bases], segments=[[] for _ in self._bases])
        self._loop = asyncio.new_event_loop()
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-taps", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(10)

    def stop(self, timeout: float = 10) -> bool:
        """End every stream and the thread; whether the thread is gone."""
        stopping = self._stopping
        if stopping is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(stopping.set)
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def running(self) -> bool:
        return self._thread.is_alive()

    def connected(self, slot: int, base: str, since: float) -> bool:
        """Whether the slot's stream is open now, to `base`, on a connection made at or after `since`."""
        with self._lock:
            segments = self._record.segments[slot]
            last = segments[-1] if segments else None
            return last is not None and last.end is None and last.base == base and last.start >= since

    def read(self) -> TapRecord:
        """A copy of what was heard so far, for a checker on another thread."""
        with self._lock:
            r = self._record
            return TapRecord(
                [dict(a) for a in r.arrivals],
                dict(r.events),
                [[Segment(s.base, s.start, s.resumed_after, s.end) for s in seg] for seg in r.segments],
                list(r.errors),
            )

    # ---- the loop's thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        self._started.set()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=None)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            tasks = [asyncio.ensure_future(self._follow(session, slot)) for slot in range(len(self._bases))]
            await self._stopping.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self, session: aiohttp.ClientSession, slot: int) -> None:
        last: int | None = None
        while True:
            base = self._bases[slot]()
            if base:
                last = await self._session(session, slot, base, last)
            await asyncio.sleep(RETRY)  # the instance is away or restarting: try its address again

    async def _session(
        self, session: aiohttp.ClientSession, slot: int, base: str, last: int | None
    ) -> int | None:
        """One connection's life; the last event id seen, for the next one's Last-Event-ID."""
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "text/event-stream"}
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        segment: Segment | None = None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                response = await session.get(base + STREAM, headers=headers)
            async with response:
                if response.status != 200:
                    return last
                segment = Segment(base, time.time(), last)
                with self._lock:
                    self._record.segments[slot].append(segment)
                parser = FrameParser()
                async for raw in response.content:
                    frame = parser.feed(raw.decode())
                    if frame is None:
                        continue
                    if frame.event == "error":
                        with self._lock:
                            self._record.errors.append((slot, str(frame.data)))
                    elif frame.id is not None:
                        self._arrived(slot, frame.id, frame.data, frame.arrived.timestamp())
                        last = frame.id if last is None else max(last, frame.id)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            pass  # the instance went away (a fault): the next connection resumes after `last`
        finally:
            if segment is not None:
                with self._lock:
                    segment.end = time.time()
        return last

    def _arrived(self, slot: int, event_id: int, data: dict[str, object], now: float) -> None:
        with self._lock:
            self._record.arrivals[slot].setdefault(event_id, now)
            if event_id not in self._record.events:
                at = datetime.fromisoformat(str(data["at"])).timestamp()
                self._record.events[event_id] = Seen(at, str(data["kind"]), str(data["instance"]), now)
