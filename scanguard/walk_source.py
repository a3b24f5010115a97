"""Where a scan's walked entries come from, a stretch at a time: a walk on the scan's own thread, or a walk
process (scanguard.walk_child, forked by multiprocessing's forkserver) that lists and stats the library on
another interpreter, off the GIL of the thread that compares and writes.

Both hand out the same entries (`walk.Listed`) in the same order, cut the same way: at most `limit`,
cut early when `seconds` pass or the scan is cancelled — never an empty stretch before the walk ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import marshal
import multiprocessing
import multiprocessing.forkserver
import os
import select
import threading
import time
from collections.abc import Generator, Sequence
from multiprocessing.context import ForkContext, ForkServerContext
from typing import Protocol

from scanguard.errors import WalkFailed
from scanguard.listing import BackgroundCount
from scanguard.walk import Listed, RootUnavailable
from scanguard.walk_child import AHEAD_BYTES, CountAnswer, WalkParams, serve

PIPE_BYTES = 1 << 17  # how far the walk process may run ahead (Linux; else the default pipe)
POLL_SECONDS = 0.1  # while waiting for entries, how often a cancel is noticed
STOP_SECONDS = 2.0  # how long a stop waits to reap the killed walk process
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class WalkSource(Protocol):
    """A scan's walk, a stretch at a time, with the counting pass's total once it is known."""

    def take(self, limit: int, seconds: float, cancel: threading.Event) -> tuple[list[Listed], bool]:
        """The next entries, and whether the walk has ended with them."""
        ...

    def total(self, wait: float) -> int | None:
        """The counting pass's total, waiting at most `wait` for it; None when unknown."""
        ...

    @property
    def pid(self) -> int | None:
        """The walk process's pid; None for a walk on the scan's own thread."""
        ...

    def close(self) -> None: ...


class InlineWalk:
    """Walks on the scan's thread (a test's filesystem, a scoped scan: no process to start)."""

    def __init__(self, items: Generator[Listed], count: BackgroundCount | None) -> None:
        self._items = items
        self._count = count

    def take(self, limit: int, seconds: float, cancel: threading.Event) -> tuple[list[Listed], bool]:
        deadline = time.monotonic() + seconds
        items: list[Listed] = []
        for item in self._items:
            items.append(item)
            if len(items) >= limit or cancel.is_set() or time.monotonic() >= deadline:
                return items, False
        return items, True

    @property
    def pid(self) -> int | None:
        return None

    def total(self, wait: float) -> int | None:
        if self._count is None:
            return None
        return self._count.wait(wait) if wait > 0 else self._count.result()

    def close(self) -> None:
        self._items.close()
        if self._count is not None:
            self._count.close()


_ahead_lock = threading.Lock()
_ahead: WalkProcess | None = None  # the walk started before its scan: the next scan's, if it is that one


def walk_ahead(params: WalkParams, preload: Sequence[str]) -> WalkProcess:
    """Start the walk of a scan about to begin, before that scan exists: `scanguard scan`, while it imports
    the rest of the runtime. The next scan to begin takes it if its walk is this one (`take_walk`), ahead
    by what it found meanwhile (at most walk_child.AHEAD_BYTES); otherwise it is stopped. Forked from
    this process while it has no other thread (the walk's module imported already), else as any walk."""
    global _ahead
    walk = WalkProcess(params, preload, fork=threading.active_count() == 1, ahead=AHEAD_BYTES)
    with _ahead_lock:
        replaced, _ahead = _ahead, walk
    if replaced is not None:
        replaced.close()
    return walk


def take_walk(params: WalkParams, preload: Sequence[str] | None = None) -> tuple[WalkProcess, bool]:
    """The walk process of a scan that begins, and whether it was started ahead (`walk_ahead`): the walk
    ahead if it is for these very params, or a new one."""
    taken = _claim_ahead(params)
    if taken is not None:
        return taken, True
    return WalkProcess(params, preload), False


def drop_walks_ahead() -> None:
    """Stop the walk started ahead, if any: a scan began that walks otherwise."""
    _claim_ahead(None)


def _claim_ahead(params: WalkParams | None) -> WalkProcess | None:
    """Empty the slot: the walk ahead if it is for `params`; stopped otherwise (only the next scan was
    foreseen)."""
    global _ahead
    with _ahead_lock:
        walk, _ahead = _ahead, None
    if walk is None or walk.params == params:
        return walk
    walk.close()
    return None


class WalkProcess:
    """Owns a walk process: starts it, reads its frames, and kills it on close (bounded, never waited on)."""

    def __init__(
        self, params: WalkParams, preload: Sequence[str] | None = None, *, fork: bool = False, ahead: int = 0
    ) -> None:
        """Fork the walk from the forkserver; `preload` is what a forkserver started here imports first
        (the worker pool's list, so that whichever starts it, workers and walks find theirs imported).
        With `fork`, this process forks it itself — only while it has no thread but its main one. With
        `ahead`, the walk may run that many bytes of frames ahead of its reader, beyond its pipe."""
        self.params = params
        if fork:
            context: ForkContext | ForkServerContext = multiprocessing.get_context("fork")
        else:
            context = multiprocessing.get_context("forkserver")  # never a bare fork of a threaded process
            if preload is not None:
                context.set_forkserver_preload(list(preload))
            multiprocessing.forkserver.ensure_running()
        reader, writer = context.Pipe(duplex=False)
        # the count's answer comes on a pipe of its own, not behind the entries the walk ran ahead with
        answer_reader, answer_writer = context.Pipe(duplex=False) if params.count else (None, None)
        self._proc = context.Process(
            target=serve, args=(params, writer, answer_writer, ahead), name="scanguard-walk", daemon=True
        )
        try:
            self._proc.start()
        finally:
            writer.close()  # the walk process holds the only writing end: its exit is this side's EOF
            if answer_writer is not None:
                answer_writer.close()  # ... and its count the only one of the answer's
        self._answer = None if answer_reader is None else CountAnswer(answer_reader)
        self._reader = reader
        self._fd = reader.fileno()
        with contextlib.suppress(OSError):  # a larger pipe lets the walk run further ahead
            fcntl.fcntl(self._fd, _F_SETPIPE_SZ, PIPE_BYTES)
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        self._buffer = bytearray()
        self._items: list[Listed] = []
        self._ended = False
        self._closed = False

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None  # started in __init__
        return self._proc.pid

    def take(self, limit: int, seconds: float, cancel: threading.Event) -> tuple[list[Listed], bool]:
        deadline = time.monotonic() + seconds
        while len(self._items) < limit and not self._ended and not cancel.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 and self._items:
                break
            self._read(min(max(remaining, 0.0), POLL_SECONDS) if self._items else POLL_SECONDS)
        items, self._items = self._items[:limit], self._items[limit:]
        return items, self._ended and not self._items

    def total(self, wait: float) -> int | None:
        return None if self._answer is None else self._answer.wait(wait)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._answer is not None:
            self._answer.close()
        if self._proc.exitcode is None:
            self._proc.kill()  # it only reads the filesystem: nothing to clean up
        self._reader.close()
        self._proc.join(STOP_SECONDS)
        if self._proc.exitcode is None:  # stuck in the kernel (a dead mount): reaped when it gets out
            # and never joined at this process's exit, which would wait on it as on any child
            multiprocessing.process._children.discard(self._proc)  # type: ignore[attr-defined]
            import structlog  # noqa: PLC0415 - `scanguard scan` forks its walk before structlog is imported

            structlog.get_logger("scanguard.scan").warning("scan.walk_unreaped", pid=self._proc.pid)
        else:
            self._proc.close()

    def _read(self, timeout: float) -> None:
        """Read what the walk process has written within `timeout`, and take in its whole frames."""
        if not self._poll.poll(timeout * 1000):
            return
        data = os.read(self._fd, PIPE_BYTES)
        if not data:
            self._proc.join(STOP_SECONDS)
            raise WalkFailed(f"the walk process exited with {self._proc.exitcode} before its end")
        buffer = self._buffer
        buffer += data
        start = 0
        view = memoryview(buffer)
        try:
            while len(buffer) - start >= 4:
                size = int.from_bytes(view[start : start + 4], "big")
                if len(buffer) - start - 4 < size:
                    break
                # our own walk process's frames, nothing from outside
                kind, value = marshal.loads(view[start + 4 : start + 4 + size])  # noqa: S302
                start += 4 + size
                self._take_in(kind, value)
        finally:
            view.release()
            del buffer[:start]

    def _take_in(self, kind: str, value: object) -> None:
        if kind == "items":
            assert isinstance(value, list)
            self._items.extend(value)
        elif kind == "end":
            self._ended = True
        elif kind == "root_unavailable":
            raise RootUnavailable(str(value))
        else:
            raise WalkFailed(f"the walk process failed: {value}")
