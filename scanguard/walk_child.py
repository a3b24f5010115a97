"""The walk process of a scan: lists and stats a library on its own interpreter, off the writer's GIL.

`serve(params, out, answer)` — the target of a process forked by multiprocessing's forkserver, which has
this module imported already, so a walk starts in a few milliseconds rather than an interpreter's start-up
— runs one `walk.Walk` and writes what it yields to the pipe `out` as frames: a 4-byte big-endian length,
then a `marshal`led `(kind, value)` — `("items", [Listed, ...])`, then `("end", None)`; or
`("root_unavailable", why)` / `("error", why)`. A blocking pipe is the flow control: the walk runs at most
a pipe's worth ahead of the scan that reads it (one a pause throws away has not walked further), or — a
walk `scanguard scan` starts before its scan reads — up to AHEAD_BYTES of frames ahead. When asked, the counting pass runs beside it in a process
of its own (CountProcess), which sends its total on the pipe `answer` — not behind
the walk's backlog, so the scan has its progress total as soon as it is known. Both die with the
forkserver, which ends with the scan's process (Linux: the parent death signal; elsewhere the broken
pipe), so a `kill -9` of the scan leaves neither behind.
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from scanguard.forked import die_with_forkserver, die_with_parent
from scanguard.listing import BackgroundCount
from scanguard.walk import Listed, MediaRule, RootUnavailable, Walk

CHUNK_ITEMS = 512  # entries per frame
CHUNK_SECONDS = 0.02  # ... or what the walk found in this long, so a slow disk's entries still flow
AHEAD_BYTES = 8 << 20  # how far a walk started ahead may run ahead of its scan: a warm disk's ~90k files
COUNT_GRACE = 2.0  # after the walk, how long to wait for the counting pass to finish (it lists less)


@dataclass(frozen=True, slots=True)
class WalkParams:
    """What the walk process walks: a library root from a checkpoint, and whether it also counts."""

    root: str
    types: dict[str, str]  # extension -> media type (MediaRule.types)
    after: str | None
    follow_symlinks: bool
    walkers: int
    scope: tuple[str, ...]
    count: bool
    nice: int = 0  # how much lower its CPU priority is than the scan's


def frame(kind: str, value: Any) -> bytes:
    """One message of the walk process, as written to its pipe."""
    payload = marshal.dumps((kind, value))
    return len(payload).to_bytes(4, "big") + payload


class FrameWriter:
    """The walk's side of the pipe: frames written whole and in order. With no `ahead`, each as it comes,
    blocking while the scan is behind (the pipe holds a few hundred entries: a walk that a pause throws
    away has not gone further). With `ahead` — a walk started before its scan reads (`scanguard scan`,
    during its imports) — by a thread of their own, up to `ahead` bytes of them queued here meanwhile and
    the walk waiting past that. A frame other than items is written before `send` returns."""

    def __init__(self, fd: int, ahead: int = 0) -> None:
        self.fd = fd
        self._ahead = ahead
        self._cond = threading.Condition()
        self._queue: deque[bytes] = deque()
        self._queued = 0  # bytes
        self._error: OSError | None = None
        self._writer: threading.Thread | None = None  # started on the first frame: after the count's fork

    def send(self, kind: str, value: Any) -> None:
        data = frame(kind, value)
        if not self._ahead:
            _write_all(self.fd, data)
            return
        with self._cond:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name="scanguard-walk-frames", daemon=True)
                self._writer.start()
            self._cond.wait_for(lambda: self._queued < self._ahead or self._error is not None)
            self._raise()
            self._queue.append(data)
            self._queued += len(data)
            self._cond.notify_all()
            if kind != "items":
                self._cond.wait_for(lambda: not self._queue or self._error is not None)
                self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _write(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                data = self._queue[0]
            try:
                _write_all(self.fd, data)
            except OSError as exc:  # the scan stopped reading (a broken pipe): the walk's next send says so
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._queued -= len(self._queue.popleft())
                self._cond.notify_all()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class CountProcess:
    """The counting pass in a process of its own, forked by the walk process before it walks: it lists the
    tree on another core instead of sharing the walk's GIL (a full scan's walk took 0.6 s with the count
    beside it, 0.38 s without), and sends its total on `answer` (nothing if it failed)."""

    def __init__(
        self,
        root: str,
        media_type: Callable[[str], str | None],
        *,
        follow_symlinks: bool,
        walkers: int,
        answer: Connection,
        inherited: tuple[int, ...] = (),
    ) -> None:
        """`answer`: the sending end of the pipe its reader waits on, handed over: this process closes its
        own copy, so the reader sees the end once the count has answered or died. `inherited`: other
        descriptors the count must not hold open (the walk's pipe)."""
        parent = os.getpid()
        pid = os.fork()  # before the walk starts a thread: this process has only one
        if pid == 0:
            _count_and_exit(inherited, answer, parent, root, media_type, follow_symlinks, walkers)
        answer.close()
        self.pid = pid
        self._reaped = False

    def join(self, timeout: float) -> bool:
        """Wait at most `timeout` for the count to end (and reap it); whether it has."""
        deadline = time.monotonic() + timeout
        while not self._reaped:
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                self._reaped = True
            elif time.monotonic() >= deadline:
                break
            else:
                time.sleep(0.01)
        return self._reaped

    def close(self) -> None:
        """Stop the count if it still runs, and reap it."""
        if not self._reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self._reaped = True


class CountAnswer:
    """The receiving end of a count's `answer` pipe: its total once sent, without waiting for the walk."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._total: int | None = None

    def wait(self, timeout: float) -> int | None:
        """The total, waiting at most `timeout` for it; None while unknown (or if the count failed)."""
        if not self._conn.closed and self._conn.poll(max(0.0, timeout)):  # its total, or its end
            with contextlib.suppress(EOFError):
                self._total = self._conn.recv()
            self.close()
        return self._total

    def close(self) -> None:
        if not self._conn.closed:
            self._conn.close()


def _count_and_exit(
    closing: tuple[int, ...],
    answer: Connection,
    parent: int,
    root: str,
    media_type: Callable[[str], str | None],
    follow_symlinks: bool,
    walkers: int,
) -> None:
    """The counting process: count, send the total on `answer` (nothing if it failed) and leave."""
    try:
        for fd in closing:  # the walk's pipe ends with the walk, not with its count
            os.close(fd)
        die_with_parent(parent)
        count = BackgroundCount(root, media_type, follow_symlinks=follow_symlinks, walkers=walkers)
        total = count.wait()
        if total is not None:
            answer.send(total)
    finally:
        os._exit(0)  # a fork of the walk process: none of its exit handlers are this process's


def run(params: WalkParams, out: FrameWriter, answer: Connection | None = None) -> None:
    """Walk, sending the entries a chunk at a time, then the end; with `answer`, the counting pass runs
    beside it and answers there, and the walk process gives it COUNT_GRACE after its own end."""
    rule = MediaRule(params.types)
    count: CountProcess | None = None
    try:
        if answer is not None:
            count = CountProcess(
                params.root,
                rule.media_type,
                follow_symlinks=params.follow_symlinks,
                walkers=params.walkers,
                answer=answer,
                inherited=(out.fd,),
            )
        walk = Walk(
            params.root,
            rule,
            after=params.after,
            follow_symlinks=params.follow_symlinks,
            walkers=params.walkers,
            scope=params.scope,
        )
        chunk: list[Listed] = []
        clock = time.monotonic
        since = clock()
        for item in walk.listed():
            if not chunk:
                since = clock()
            chunk.append(item)
            if len(chunk) >= CHUNK_ITEMS or clock() - since >= CHUNK_SECONDS:
                out.send("items", chunk)
                chunk = []
        if chunk:
            out.send("items", chunk)
        out.send("end", None)
        if count is not None:
            count.join(COUNT_GRACE)  # the count lists less than the walk: it is about done too
    except RootUnavailable as exc:
        out.send("root_unavailable", str(exc))
    finally:
        if count is not None:
            count.close()


def serve(params: WalkParams, out: Connection, answer: Connection | None = None, ahead: int = 0) -> None:
    """The walk process's body (a forkserver's child): walk, writing frames to `out`'s pipe, then exit;
    with `answer` (params.count), the counting pass answers there."""
    die_with_forkserver()
    gc.enable()  # forked by `scanguard scan` while it imports, with its collections held off
    if params.nice:
        os.nice(params.nice)  # a busy machine serves the scan's writer and the API before the walk
    frames = FrameWriter(out.fileno(), ahead)
    try:
        run(params, frames, answer)
    except BrokenPipeError:
        return  # the scan stopped reading: it has stopped, or it is gone
    except Exception as exc:
        try:
            frames.send("error", f"{type(exc).__name__}: {exc}")
        except BrokenPipeError:
            return
        raise SystemExit(1) from exc
