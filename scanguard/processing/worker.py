"""What runs inside a worker process: its memory cap, each file's deadline, and the named processors applied
to a chunk of files."""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import resource
import signal
import sys
import time
from typing import Final

from scanguard.forked import die_with_forkserver
from scanguard.processing.context import FileContext, Result, describe
from scanguard.processing.registry import NamedProcessor, resolve

MIB = 1024 * 1024
MARK: Final = "i"  # int32 fields, MARK_FIELDS of them per task slot
MARK_FIELDS: Final = 2
FILE: Final = 0  # 1 + the index of the file the task is on (0: none started)
TOOL: Final = 1  # the process group of the external tool running for that file (0: none)
DEADLINE_SIGNAL: Final = signal.SIGALRM  # its default action ends the worker, whatever code it is in
PR_SET_PDEATHSIG: Final = 1

_resolved: dict[tuple[str, ...], tuple[NamedProcessor, ...]] = {}
_keys: dict[str, str] = {}  # processor name -> its name as a JSON string, the key of its results
_encode = json.JSONEncoder().encode  # json.dumps' defaults, without its per-call checks
_marks: memoryview | None = None
_slot: int | None = None  # the slot of the task being worked on
_file_timeout = 0.0
_deadline: float | None = None  # time.monotonic() by which the current file must be done
# loaded here, once: die_with_parent also runs between fork and exec, where as little as possible should
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def die_with_parent(parent: int | None = None) -> None:
    """Linux: SIGKILL this process when the thread that started it is gone. With `parent` (its pid as the
    parent saw it), a parent that died before this call ends this process at once."""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def initialize(memory_limit_mib: int, marks_path: str, file_timeout: float) -> None:
    """Runs once in each new worker: die with the service (its forkserver, which ends with it once no
    worker holds its alive pipe either), map the
    progress marks, take the per-file deadline, cap RLIMIT_AS if set."""
    global _marks, _file_timeout
    die_with_forkserver()  # also when stuck where no code of its own runs: SIGKILL from the kernel
    signal.signal(DEADLINE_SIGNAL, signal.SIG_DFL)
    _file_timeout = file_timeout
    with open(marks_path, "r+b") as fh:
        _marks = memoryview(mmap.mmap(fh.fileno(), 0)).cast(MARK)
    if memory_limit_mib > 0:
        limit = memory_limit_mib * MIB
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def time_left() -> float | None:
    """Seconds until the current file's deadline (None outside a worker's file)."""
    return None if _deadline is None else max(0.0, _deadline - time.monotonic())


def _mark(field: int, value: int) -> None:
    if _marks is not None and _slot is not None:
        _marks[_slot * MARK_FIELDS + field] = value


def tool_started(pgid: int) -> None:
    """An external tool runs for the current file in process group `pgid`: if this worker is killed, the
    pool kills that group (the tool itself has the parent-death signal; its own children do not)."""
    _mark(TOOL, pgid)


def tool_ended() -> None:
    _mark(TOOL, 0)


def apply(processors: tuple[NamedProcessor, ...], ctx: FileContext) -> tuple[str | None, str | None]:
    """Every processor that reads this file's media type: its meta as JSON text (None: no result) and the
    errors (None: none). Each result is encoded once, here: a result that cannot be stored is this file's
    error, and the service writes the text as it is."""
    parts: list[str] = []
    errors: list[str] = []
    for proc in processors:
        if not proc.applies_to(ctx.media_type):
            continue
        try:
            parts.append(f"{_keys[proc.name]}: {_encode(proc.function(ctx))}")
        except Exception as exc:  # noqa: BLE001 - a processor failing on one file is that file's error
            errors.append(f"{proc.name}: {describe(exc)}")
    meta = "{" + ", ".join(parts) + "}" if parts else None
    return meta, ("; ".join(errors) or None)


def process_chunk(names: tuple[str, ...], contexts: list[FileContext], slot: int) -> list[Result]:
    """The task a worker runs: each file of the chunk through the named processors, in order.

    Before each file it marks the task's slot, so that when the worker dies or is killed mid-chunk the
    pool knows which file it was on, and arms the file's deadline: a real-time timer whose signal ends the
    worker (the kernel's default action, so a parser spinning in C is ended too) `file_timeout` seconds
    into the file.
    """
    global _slot, _deadline
    processors = _resolved.get(names)
    if processors is None:
        processors = _resolved[names] = resolve(names)
        _keys.update((proc.name, _encode(proc.name)) for proc in processors)
    results: list[Result] = []
    _slot = slot
    try:
        for index, ctx in enumerate(contexts):
            _mark(FILE, index + 1)
            if _file_timeout > 0:
                _deadline = time.monotonic() + _file_timeout
                signal.setitimer(signal.ITIMER_REAL, _file_timeout)
            meta, error = apply(processors, ctx)
            results.append((meta, error, None if error is None else "error"))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _slot = _deadline = None
    return results
