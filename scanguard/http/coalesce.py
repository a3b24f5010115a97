"""Request coalescing for hot reads: concurrent identical reads share one Runtime call, without going stale.

A request never gets an answer computed before it arrived: it waits for a call that *started* after its
arrival — the one it starts itself, or one that a request queued behind it started meanwhile. So at most
one call per read is in flight, 200 pollers cost the store one query at a time, and a client that pauses
a job and then reads current-jobs still sees its own write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Coalesced(Generic[T]):
    """Wraps an async read; `await coalesced()` runs it or shares the next run of it."""

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._lock = asyncio.Lock()
        self._started = 0
        self._result: T | None = None
        self._error: BaseException | None = None

    async def __call__(self) -> T:
        arrival = self._started
        async with self._lock:  # FIFO: one call at a time
            if self._started > arrival:
                # a call started after we arrived, and (we hold the lock) it has finished: share it
                if self._error is not None:
                    raise self._error
                return self._result  # type: ignore[return-value]
            self._started += 1
            try:
                self._result, self._error = await self._read(), None
            except Exception as exc:
                self._result, self._error = None, exc
                raise
            return self._result
