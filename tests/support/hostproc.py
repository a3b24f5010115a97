"""A host's processor for tests, run in scanguard's worker processes: it misbehaves on files named for it.

Files whose name starts with `hang`, `exit`, `segv`, `raise` or `memory` make it hang, `os._exit(3)`,
segfault (ctypes), raise, or allocate 4 GiB; `unjson` makes it return what JSON cannot hold (a set); `stubborn` blocks SIGTERM and hangs (a worker that a stop
cannot end in time, as one stuck in uninterruptible I/O); `slow` takes SLOW_SECONDS; `tool` runs the
external tool TOOL (a script the test writes beside the library root) and returns its output. Every call is appended to `calls.log` beside the library
root (one line per call: path, pid), so a test can count how often each file was processed.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from scanguard import FileContext
from scanguard.processing import tools

NAME = "tests.support.hostproc:misbehave"
CALLS = "calls.log"
SLOW_SECONDS = 0.6  # a `slow` file's work: 0.6 of the tests' 1 s file_timeout
TOOL = "tool.sh"
# the poison files (copies of a real audio file), the quarantine reason each gets, and what its error says
POISON = {
    "Bad/hang.flac": ("timeout", "timeout"),
    "Bad/exit.flac": ("exit", "worker exited with 3"),
    "Bad/segv.flac": ("signal", "killed by signal 11 (SIGSEGV)"),
    "Bad/raise.flac": ("error", "ValueError: cannot make sense of raise.flac"),
    "Bad/memory.flac": ("error", "MemoryError"),
}


def add_poison(root: Path, source: str) -> None:
    """Copy the audio file `source` (relative to root) to every poison path."""
    for rel in POISON:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / source, root / rel)


def alive(pid_set: set[int]) -> set[int]:
    """The processes of `pid_set` still running (zombies count as gone)."""
    import psutil

    running = set()
    for pid in pid_set:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running.add(pid)
        except psutil.NoSuchProcess:
            continue
    return running


def pids(root: str | os.PathLike[str]) -> set[int]:
    """The worker processes that have run the host processor on this library."""
    try:
        with open(calls_log(root), encoding="utf-8") as fh:
            return {int(line.split("\t")[1]) for line in fh.read().splitlines() if line}
    except FileNotFoundError:
        return set()


def calls_log(root: str | os.PathLike[str]) -> str:
    """Where the calls on a library rooted at `root` are logged."""
    return os.path.join(os.path.dirname(os.path.abspath(root)), CALLS)


def read_calls(root: str | os.PathLike[str]) -> list[str]:
    """The paths processed so far, one entry per call, in call order."""
    try:
        with open(calls_log(root), encoding="utf-8") as fh:
            return [line.split("\t", 1)[0] for line in fh.read().splitlines() if line]
    except FileNotFoundError:
        return []


def misbehave(ctx: FileContext) -> dict[str, Any]:
    """Log the call; then hang, exit, crash, raise or blow the memory cap as the file's name says."""
    name = os.path.basename(ctx.path)
    if name.startswith("stubborn"):  # before the call is logged: a test that saw the call may stop at once
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    fd = os.open(calls_log(ctx.root), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{ctx.path}\t{os.getpid()}\n".encode())
    finally:
        os.close(fd)
    if name.startswith(("hang", "stubborn")):
        time.sleep(3600)
    elif name.startswith("slow"):
        time.sleep(SLOW_SECONDS)
    elif name.startswith("tool"):
        done = tools.run([os.path.join(os.path.dirname(os.path.abspath(ctx.root)), TOOL)])
        return {"size": ctx.size, "tool": done.stdout.decode()}
    elif name.startswith("exit"):
        os._exit(3)
    elif name.startswith("segv"):
        ctypes.string_at(0)
    elif name.startswith("raise"):
        raise ValueError(f"cannot make sense of {name}")
    elif name.startswith("unjson"):
        return {"size": {ctx.size}}
    elif name.startswith("memory"):
        hog = bytearray(4 * 1024**3)
        return {"size": len(hog)}
    return {"size": ctx.size}
