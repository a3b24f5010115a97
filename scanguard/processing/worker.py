"""What runs inside a worker process: its memory cap, and the named processors applied to a chunk of files."""

from __future__ import annotations

import ctypes
import json
import mmap
import resource
import signal
import sys
from typing import Any, Final

from scanguard.processing.context import FileContext, describe
from scanguard.processing.registry import NamedProcessor, resolve

MIB = 1024 * 1024
MARK: Final = "i"  # one int32 per task slot: 1 + the index of the file the task is on (0: none started)
_resolved: dict[tuple[str, ...], tuple[NamedProcessor, ...]] = {}
_marks: memoryview | None = None


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when its parent (the forkserver, which ends with the service) is gone,
    so a worker stuck in a file never outlives a `kill -9` of the service."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def initialize(memory_limit_mib: int, marks_path: str) -> None:
    """Runs once in each new worker: die with the service, map the progress marks, cap RLIMIT_AS if set."""
    global _marks
    _die_with_parent()
    with open(marks_path, "r+b") as fh:
        _marks = memoryview(mmap.mmap(fh.fileno(), 0)).cast(MARK)
    if memory_limit_mib > 0:
        limit = memory_limit_mib * MIB
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def apply(
    processors: tuple[NamedProcessor, ...], ctx: FileContext
) -> tuple[dict[str, Any] | None, str | None]:
    """Every processor that reads this file's media type: ({name: result}, None) or (partial, the error)."""
    meta: dict[str, Any] = {}
    errors: list[str] = []
    for proc in processors:
        if not proc.applies_to(ctx.media_type):
            continue
        try:
            result = proc.function(ctx)
            if proc.media_type is None:
                json.dumps(
                    result
                )  # a host's result that cannot be stored is this file's error, not the batch's
        except Exception as exc:  # noqa: BLE001 - a processor failing on one file is that file's error
            errors.append(f"{proc.name}: {describe(exc)}")
            continue
        meta[proc.name] = result
    return (meta or None), ("; ".join(errors) or None)


def process_chunk(
    names: tuple[str, ...], contexts: list[FileContext], slot: int
) -> list[tuple[dict[str, Any] | None, str | None]]:
    """The task a worker runs: each file of the chunk through the named processors, in order.

    Before each file it marks the task's slot, so that when the worker dies or is killed mid-chunk the
    pool knows which file it was on.
    """
    processors = _resolved.get(names)
    if processors is None:
        processors = _resolved[names] = resolve(names)
    results = []
    for index, ctx in enumerate(contexts):
        if _marks is not None:
            _marks[slot] = index + 1
        results.append(apply(processors, ctx))
    return results
