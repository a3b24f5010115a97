"""Runs an external tool (ffprobe) for the file a worker is on: in a process group of its own, which dies
with the worker and never outlives the file's deadline."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence

from scanguard.processing import worker

UNBOUNDED_TIMEOUT = 30.0  # outside a worker's file (no deadline): the documented file_timeout default
GRACE = 1.0  # past the file's deadline: the worker's deadline ends it (and the pool the tool) first


def kill_group(pgid: int) -> None:
    """SIGKILL a tool's process group; one already gone is no error. Its pgid cannot have been reused:
    Linux keeps a pid out of use while any process still has it as its group."""
    if pgid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def run(args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    """Run a tool to its end, capturing its output; raises subprocess.TimeoutExpired past the deadline.

    The tool leads a new process group and has the parent-death signal (it dies when the worker does,
    however the worker ends); the worker records the group in its task's slot, so the pool kills the
    group, the tool's own children with it, when it kills the worker. Whatever is left in the group when
    the tool ends goes too: nothing a tool starts for a file outlives that file.
    """
    left = worker.time_left()
    timeout = UNBOUNDED_TIMEOUT if left is None else left + GRACE
    parent = os.getpid()
    with subprocess.Popen(
        list(args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
        preexec_fn=lambda: worker.die_with_parent(parent),  # noqa: PLW1509 - a worker has no other threads
    ) as proc:
        worker.tool_started(proc.pid)
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            kill_group(proc.pid)
            proc.wait()
            worker.tool_ended()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
