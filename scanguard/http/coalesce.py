"""Request coalescing for hot reads: concurrent identical reads share one Runtime call, without going stale.

A request never gets an answer computed before it arrived: it waits for a call that *started* after its
arrival — the one it starts itself, or one that a request queued behind it started meanwhile. So at most
one call per read is in flight, 200 pollers cost the store one query at a time, and a client that pauses
a job and then reads current-jobs still sees its own write. `SharedReads` does the same for reads named by
a value (a declared read, say `ListJobs(("running",))`): one Coalesced per value, while it is in use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Coalesced(Generic[T]):
    """Wraps an async read; `await coalesced()` runs it or shares the next run of it.

    Every request that arrives while a run is in flight waits for the one run that starts after it ends;
    all of them wake together when it is done (one future), not one after another.
    """

    def __init__(self, read: Callable[[], Awaitable[T]], on_idle: Callable[[], None] | None = None) -> None:
        self._read = read
        self._on_idle = on_idle  # called when a run ends and no request waits for another
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
            elif self._on_idle is not None:
                self._on_idle()


class SharedReads:
    """Owns the coalesced runs of reads named by hashable values: concurrent requests for equal values
    share one run (as `Coalesced` shares them: never one that started before the request); a value's
    entry lives while a run of it is in flight or queued, so many distinct values leave nothing behind."""

    def __init__(self, read: Callable[[Any], Awaitable[Any]]) -> None:
        self._read = read
        self._runs: dict[Hashable, Coalesced[Any]] = {}

    def __len__(self) -> int:
        """How many distinct values have a run in flight or queued."""
        return len(self._runs)

    async def __call__(self, key: Hashable) -> Any:
        shared = self._runs.get(key)
        if shared is None:
            shared = self._runs[key] = Coalesced(partial(self._read, key), partial(self._forget, key))
        return await shared()

    def _forget(self, key: Hashable) -> None:
        self._runs.pop(key, None)


def _retrieved(answer: asyncio.Future[Any]) -> None:
    """Mark the run's error as seen even when every request waiting for it has gone."""
    if not answer.cancelled():
        answer.exception()
