"""The progress feed: while anyone listens, snapshot the current jobs once a second and fan it out to SSE streams.

Batches commit no events of their own, so live progress (files/s, ETA) on the dashboard comes from here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from scanguard.errors import ScanguardError
from scanguard.records import Job

log = structlog.get_logger("scanguard.http.progress")
Snapshot = list[dict[str, Any]]


class ProgressFeed:
    """Owns one polling task shared by every stream; it stops when the last listener leaves."""

    def __init__(
        self, read_current_jobs: Callable[[], Awaitable[Sequence[Job]]], *, interval: float = 1.0
    ) -> None:
        self._read = read_current_jobs
        self._interval = interval
        self._queues: set[asyncio.Queue[Snapshot]] = set()
        self._task: asyncio.Task[None] | None = None
        self._last: Snapshot | None = None
        self._wake = asyncio.Event()

    def subscribe(self) -> asyncio.Queue[Snapshot]:
        queue: asyncio.Queue[Snapshot] = asyncio.Queue(maxsize=4)
        self._queues.add(queue)
        if self._last is not None:
            queue.put_nowait(self._last)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="scanguard-progress-feed")
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Snapshot]) -> None:
        self._queues.discard(queue)

    def poke(self) -> None:
        """Take a snapshot now (a job event just arrived)."""
        self._wake.set()

    async def close(self) -> None:
        self._queues.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._queues:
            try:
                jobs = await self._read()
            except ScanguardError as exc:
                log.debug("progress.snapshot_failed", error=str(exc))
            else:
                snapshot = [job.to_dict() for job in jobs]
                if snapshot != self._last:
                    self._last = snapshot
                    for queue in list(self._queues):
                        if queue.full():
                            queue.get_nowait()  # a slow reader only ever needs the newest snapshot
                        queue.put_nowait(snapshot)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
