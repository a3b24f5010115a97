"""What the forkserver imports before it forks a walk or a worker, and starting it ahead of a scan.

Light on purpose: `scanguard scan` imports this first thing, so that the forkserver (and the walk it
forks) start while the command is still importing the rest.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
from collections.abc import Sequence

from scanguard.processing import builtins


def forkserver_preload(names: Sequence[str]) -> list[str]:
    """What the forkserver imports once for every process it forks: the walk process's module, and for
    the workers the built-ins' parsers, whole (a recycled worker would otherwise import mutagen's 44
    modules again on its first file). Whoever starts the forkserver — a pool, a scan's walk, `scanguard
    scan` ahead of its imports — starts it with this list."""
    return [
        "scanguard.processing.spawning",
        "scanguard.walk_child",
        "scanguard.processing.worker",
        "scanguard.processing.builtins",
        *(m for n in names for m in builtins.PRELOAD.get(n, ())),
    ]


def prestart(names: Sequence[str]) -> None:
    """Start the forkserver that forks the workers, now: its imports (the parsers: a few tenths of a second)
    run on another core beside the process's own start-up instead of before the first file is read.

    For a process about to scan (`scanguard scan`): the forkserver lives as long as the process (it ends
    with it), so a pool never starts it itself before its first file — a Runtime whose start fails leaves
    no process behind."""
    multiprocessing.get_context("forkserver").set_forkserver_preload(forkserver_preload(names))
    multiprocessing.forkserver.ensure_running()
