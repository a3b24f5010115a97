"""Deadline waits and gates: tests synchronise on events and polls with deadlines, never on bare sleeps."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from scanguard import FileContext
from scanguard.walk import OsFileSystem

T = TypeVar("T")
GATE_TIMEOUT = 30.0


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.01) -> T:
    """Poll `predicate` until it returns something truthy, or fail saying what never happened."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        pause.wait(interval)


class ProcessorGate:
    """A per-file processor that stops the scan actor inside a batch at chosen paths until released.

    `hits` receives (path, release_event) each time a chosen path is reached (once per path).
    """

    def __init__(self, paths: Iterable[str] = ()) -> None:
        self._paths = set(paths)
        self._lock = threading.Lock()
        self.hits: queue.Queue[tuple[str, threading.Event]] = queue.Queue()
        self._released: list[threading.Event] = []
        self.closed = threading.Event()

    def __call__(self, ctx: FileContext) -> dict[str, Any] | None:
        with self._lock:
            hit = ctx.path in self._paths and not self.closed.is_set()
            self._paths.discard(ctx.path)
            if hit:
                release = threading.Event()
                self._released.append(release)
        if hit:
            self.hits.put((ctx.path, release))
            release.wait(GATE_TIMEOUT)
        return None

    def arm(self, path: str) -> None:
        """Hold the next scan that reaches `path` (again)."""
        with self._lock:
            self._paths.add(path)

    def next_hit(self, timeout: float = 30.0) -> tuple[str, threading.Event]:
        try:
            return self.hits.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no gated path reached within {timeout:g}s") from None

    def open_all(self) -> None:
        """Release every held scan and let all later files through (teardown safety)."""
        self.closed.set()
        with self._lock:
            for release in self._released:
                release.set()


class GatedFileSystem(OsFileSystem):
    """The real filesystem, except that listing one chosen directory waits for the test first."""

    def __init__(self, gated: str | os.PathLike[str]) -> None:
        self.gated = os.fspath(gated)
        self.reached = threading.Event()
        self.release = threading.Event()

    def scandir(self, path: str) -> Iterable[os.DirEntry[str]]:
        if os.fspath(path) == self.gated and not self.release.is_set():
            self.reached.set()
            self.release.wait(GATE_TIMEOUT)
        return super().scandir(path)


# for tests that hold a scan still on purpose: no safeguard may step in meanwhile
QUIET_SAFEGUARDS: dict[str, Any] = {
    "watchdog_interval": 3600,
    "stall_threshold": 3600,
    "orphaned_job_threshold": 3600,
    "state_validation_interval": 0,
    "cleanup_interval": 0,
    "health_check_interval": 0,
}


# the environment of a child process that is not a watching test: its libraries are added unwatched (else
# a watcher's catch-up scan would take the library that the test means to scan itself)
UNWATCHED: dict[str, str] = {"SCANGUARD_WATCH_DEFAULT": "false"}
