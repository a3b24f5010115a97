"""The walk process of a scan: lists and stats a library on its own interpreter, off the writer's GIL.

`serve(params, out)` — the target of a process forked by multiprocessing's forkserver, which has this
module imported already, so a walk starts in a few milliseconds rather than an interpreter's start-up —
runs one `walk.Walk` (and, when asked, the counting pass in a process it forks) and writes what it yields to the pipe
`out` as frames: a 4-byte big-endian length, then a `marshal`led `(kind, value)` — `("items", [Listed,
...])`, `("total", n)`, then `("end", None)`; or `("root_unavailable", why)` / `("error", why)`. A
blocking pipe is the flow control: the walk runs at most a pipe's worth ahead of the scan that reads it.
It dies with the forkserver, which ends with the scan's process (Linux: the parent death signal;
elsewhere the broken pipe), so a `kill -9` of the scan leaves no walk behind.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from scanguard.forked import die_with_forkserver, die_with_parent
from scanguard.listing import BackgroundCount
from scanguard.walk import Listed, MediaRule, RootUnavailable, Walk

CHUNK_ITEMS = 512  # entries per frame
CHUNK_SECONDS = 0.02  # ... or what the walk found in this long, so a slow disk's entries still flow
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


class _Frames:
    """The walk's side of the pipe: frames written whole, blocking while the scan is behind."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, kind: str, value: Any) -> None:
        data = memoryview(frame(kind, value))
        while data:
            data = data[os.write(self.fd, data) :]


class CountProcess:
    """The counting pass in a process of its own, forked by the walk process before it walks: the count
    lists the tree on another core instead of sharing the walk's GIL (a full scan's walk took 0.6 s with
    the count beside it, 0.38 s without). The same calls as BackgroundCount, which it runs."""

    def __init__(
        self,
        root: str,
        media_type: Callable[[str], str | None],
        *,
        follow_symlinks: bool,
        walkers: int,
        inherited: tuple[int, ...] = (),
    ) -> None:
        parent = os.getpid()
        read, write = os.pipe()
        pid = os.fork()  # before the walk starts a thread: this process has only one
        if pid == 0:
            _count_and_exit((read, *inherited), write, parent, root, media_type, follow_symlinks, walkers)
        os.close(write)
        self.pid = pid
        self._read = read
        self._total: int | None = None
        self._over = False  # its answer read (a total, or none), and the process reaped

    def result(self) -> int | None:
        """The count, or None while it runs."""
        return self.wait(0.0)

    def wait(self, timeout: float | None = None) -> int | None:
        """The count, waiting at most `timeout` for it; None if it is not known by then (or failed)."""
        if not self._over and select.select([self._read], [], [], timeout)[0]:
            answer = os.read(self._read, 8)  # 8 bytes, written whole (less than a pipe's atomic write)
            self._total = int.from_bytes(answer, "big") if len(answer) == 8 else None
            self._end()
        return self._total

    def close(self) -> None:
        """Stop the count if it still runs, and reap it."""
        if not self._over:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._end()

    def _end(self) -> None:
        self._over = True
        os.close(self._read)
        os.waitpid(self.pid, 0)  # it has answered (then exits at once) or was killed


def _count_and_exit(
    closing: tuple[int, ...],
    write: int,
    parent: int,
    root: str,
    media_type: Callable[[str], str | None],
    follow_symlinks: bool,
    walkers: int,
) -> None:
    """The counting process: count, write the total (8 bytes, nothing if it failed) and leave."""
    try:
        for fd in closing:  # the walk's pipe ends with the walk, not with its count
            os.close(fd)
        die_with_parent(parent)
        count = BackgroundCount(root, media_type, follow_symlinks=follow_symlinks, walkers=walkers)
        total = count.wait()
        if total is not None:
            os.write(write, total.to_bytes(8, "big"))
    finally:
        os._exit(0)  # a fork of the walk process: none of its exit handlers are this process's


def run(params: WalkParams, out: _Frames) -> None:
    """Walk, sending the entries a chunk at a time, the count once it is known, then the end."""
    rule = MediaRule(params.types)
    count = (
        CountProcess(
            params.root,
            rule.media_type,
            follow_symlinks=params.follow_symlinks,
            walkers=params.walkers,
            inherited=(out.fd,),
        )
        if params.count
        else None
    )
    walk = Walk(
        params.root,
        rule,
        after=params.after,
        follow_symlinks=params.follow_symlinks,
        walkers=params.walkers,
        scope=params.scope,
    )
    total: int | None = None
    chunk: list[Listed] = []
    clock = time.monotonic
    since = clock()
    try:
        for item in walk.listed():
            if not chunk:
                since = clock()
            chunk.append(item)
            if len(chunk) >= CHUNK_ITEMS or clock() - since >= CHUNK_SECONDS:
                out.send("items", chunk)
                chunk = []
                if total is None and count is not None and (total := count.result()) is not None:
                    out.send("total", total)
        if chunk:
            out.send("items", chunk)
        if total is None and count is not None and (total := count.wait(COUNT_GRACE)) is not None:
            out.send("total", total)
        out.send("end", None)
    except RootUnavailable as exc:
        out.send("root_unavailable", str(exc))
    finally:
        if count is not None:
            count.close()


def serve(params: WalkParams, out: Connection) -> None:
    """The walk process's body (a forkserver's child): walk, writing frames to `out`'s pipe, then exit."""
    die_with_forkserver()
    if params.nice:
        os.nice(params.nice)  # a busy machine serves the scan's writer and the API before the walk
    frames = _Frames(out.fileno())
    try:
        run(params, frames)
    except BrokenPipeError:
        return  # the scan stopped reading: it has stopped, or it is gone
    except Exception as exc:
        try:
            frames.send("error", f"{type(exc).__name__}: {exc}")
        except BrokenPipeError:
            return
        raise SystemExit(1) from exc
