"""Runs an external tool (ffprobe) for the file a worker is on: in a process group of its own, which dies
with the worker and never outlives the file."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import tempfile
from collections.abc import Sequence

from scanguard.processing import worker

UNBOUNDED_TIMEOUT = 30.0  # outside a worker's file (no deadline): the documented file_timeout default
GRACE = 1.0  # past the file's deadline: the worker's deadline ends it (and the pool the tool) first


def kill_group(pgid: int) -> None:
    """SIGKILL a tool's process group; one already gone is no error (Linux hands out pids in a cycle, so
    the id of a group that just emptied is not another group's moments later)."""
    if pgid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to `timeout` for the process to exit, without reaping it: while its zombie stands, its pid
    (the group's id) cannot be reused, so killing the group afterwards hits only what the tool left."""
    if not hasattr(os, "pidfd_open"):  # not Linux: a wait that reaps it
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    fd = os.pidfd_open(proc.pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return bool(ready)


def run(args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    """Run a tool to its end, capturing its output; raises subprocess.TimeoutExpired past the deadline.

    The tool leads a new process group and has the parent-death signal (it dies when the worker does,
    however the worker ends); the worker records the group in its task's slot, so the pool kills the
    group, the tool's own children with it, when it kills the worker. Whatever is left in the group when
    the tool ends goes too, and its output goes to files, not pipes, so a child it left holding them does
    not keep the worker waiting: nothing a tool starts for a file outlives that file.
    """
    left = worker.time_left()
    timeout = UNBOUNDED_TIMEOUT if left is None else left + GRACE
    parent = os.getpid()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            process_group=0,
            preexec_fn=lambda: worker.die_with_parent(parent),  # noqa: PLW1509 - a worker has no other threads
        )
        worker.tool_started(proc.pid)
        try:
            ended = _exited(proc, timeout)
        finally:
            kill_group(proc.pid)
            proc.wait()
            worker.tool_ended()
        if not ended:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
