"""What a process forked by multiprocessing's forkserver does to die with the service that asked for it.

The forkserver ends once no process holds its "alive" pipe: the service's process, and every child it
forked, which inherits that pipe. A child that lets go of it, and takes the parent-death signal (Linux),
dies when the service does — even `kill -9`ed, and even stopped or stuck where no code of its own runs.
"""

from __future__ import annotations

import multiprocessing.forkserver
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_forkserver() -> None:
    """Let go of the forkserver's alive pipe, be killed when the forkserver (the parent) dies, and exit
    now if it already has."""
    server = multiprocessing.forkserver._forkserver
    alive = getattr(server, "_forkserver_alive_fd", None)
    if alive is not None:
        os.close(alive)
        setattr(server, "_forkserver_alive_fd", None)  # noqa: B010 - a private attribute of the stdlib
    die_with_parent()


def die_with_parent(parent: int | None = None) -> None:
    """Be killed when the parent process dies (Linux), and exit now if it already has (`parent`: its pid
    as the parent saw it before forking, so that a parent gone in between is noticed too)."""
    parent = os.getppid() if parent is None else parent
    if sys.platform.startswith("linux"):
        import ctypes  # noqa: PLC0415 - only forked children need it

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        raise SystemExit(0)
