"""Request coalescing for hot reads: concurrent identical reads share one Runtime call, without going stale.

A request never gets an answer computed before it arrived: it waits for a call that *started* after its
arrival — the one it starts itself, or one that a request queued behind it started meanwhile. So at most
one call per read is in flight, 200 pollers cost the store one query at a time, and a client that pauses
a job and then reads current-jobs still sees its own write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Coalesced(Generic[T]):
    """Wraps an async read; `await coalesced()` runs it or shares the next run of it.

    Every request that arrives while a run is in flight waits for the one run that starts after it ends;
    all of them wake together when it is done (one future), not one after another.
    """

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._running = False
        self._next: asyncio.Future[T] | None = None  # the run that starts when the current one ends
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self) -> T:
        answer = self._next
        if answer is None:
            answer = self._next = asyncio.get_running_loop().create_future()
            answer.add_done_callback(_retrieved)
            if not self._running:
                self._start()
        # shielded: a request that gives up (its client went away) never cancels the others' run
        return await asyncio.shield(answer)

    def _start(self) -> None:
        assert self._next is not None
        answer, self._next = self._next, None
        self._running = True
        task = asyncio.ensure_future(self._run(answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, answer: asyncio.Future[T]) -> None:
        try:
            answer.set_result(await self._read())
        except Exception as exc:  # noqa: BLE001 - handed to every request that waits for this run
            answer.set_exception(exc)
        finally:
            self._running = False
            if self._next is not None:
                self._start()


def _retrieved(answer: asyncio.Future[Any]) -> None:
    """Mark the run's error as seen even when every request waiting for it has gone."""
    if not answer.cancelled():
        answer.exception()
