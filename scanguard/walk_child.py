"""The walk process of a scan: lists and stats a library on its own interpreter, off the writer's GIL.

`serve(params, out)` — the target of a process forked by multiprocessing's forkserver, which has this
module imported already, so a walk starts in a few milliseconds rather than an interpreter's start-up —
runs one `walk.Walk` (and, when asked, the counting pass beside it) and writes what it yields to the pipe
`out` as frames: a 4-byte big-endian length, then a `marshal`led `(kind, value)` — `("items", [Listed,
...])`, `("total", n)`, then `("end", None)`; or `("root_unavailable", why)` / `("error", why)`. A
blocking pipe is the flow control: the walk runs at most a pipe's worth ahead of the scan that reads it.
It dies with the forkserver, which ends with the scan's process (Linux: the parent death signal;
elsewhere the broken pipe), so a `kill -9` of the scan leaves no walk behind.
"""

from __future__ import annotations

import marshal
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from scanguard.forked import die_with_forkserver
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


def run(params: WalkParams, out: _Frames) -> None:
    """Walk, sending the entries a chunk at a time, the count once it is known, then the end."""
    walk = Walk(
        params.root,
        MediaRule(params.types),
        after=params.after,
        follow_symlinks=params.follow_symlinks,
        walkers=params.walkers,
        scope=params.scope,
    )
    count = (
        BackgroundCount(
            params.root,
            walk.rule.media_type,
            follow_symlinks=params.follow_symlinks,
            walkers=params.walkers,
        )
        if params.count
        else None
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
