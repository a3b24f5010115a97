"""The event source seam: inotify through inotify_simple, which hands IN_Q_OVERFLOW and ENOSPC to us."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Protocol

from inotify_simple import INotify, flags

from scanguard.errors import WatchLimit

# what a watched folder reports: its entries created, written, closed, touched, moved and deleted, and
# its own deletion or move (the root's means the library is gone); IN_Q_OVERFLOW, IN_IGNORED and
# IN_UNMOUNT always arrive
MASK = (
    flags.CREATE
    | flags.MODIFY
    | flags.CLOSE_WRITE
    | flags.ATTRIB
    | flags.MOVED_FROM
    | flags.MOVED_TO
    | flags.DELETE
    | flags.DELETE_SELF
    | flags.MOVE_SELF
    | flags.ONLYDIR
    | flags.DONT_FOLLOW
    | flags.EXCL_UNLINK
)
OVERFLOW = int(flags.Q_OVERFLOW)
ISDIR = int(flags.ISDIR)
GONE = int(flags.DELETE_SELF | flags.MOVE_SELF | flags.UNMOUNT | flags.IGNORED)
MOVED_FROM = int(flags.MOVED_FROM)
MOVED_TO = int(flags.MOVED_TO)
DROPPED = int(flags.DELETE_SELF | flags.UNMOUNT | flags.IGNORED)  # a folder gone for good (not moved)
ADDED = int(flags.CREATE | flags.MOVED_TO)
REMOVED = int(flags.DELETE | flags.MOVED_FROM)
LIMIT_MESSAGE = (
    "no more inotify watches: raise the kernel's limit, e.g. `sysctl fs.inotify.max_user_watches=524288` "
    "(and in /etc/sysctl.d/ to keep it), or [watch] max_watches; polling meanwhile"
)


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One inotify event: the watch it came from, its mask, the rename cookie, the entry's name."""

    wd: int
    mask: int
    cookie: int = 0
    name: str = ""


class EventSource(Protocol):
    """Where a watcher's events come from (inotify, or a fake in tests)."""

    def add_watch(self, path: str) -> int:
        """Watch one folder; its watch descriptor. WatchLimit when the watches ran out (ENOSPC)."""
        ...

    def remove_watch(self, wd: int) -> None: ...

    def read(self, timeout: float) -> list[RawEvent]:
        """The events queued so far, waiting at most `timeout` seconds for the first."""
        ...

    def close(self) -> None: ...


class InotifySource:
    """Owns one inotify instance: its watches and its event queue."""

    def __init__(self) -> None:
        self._inotify = INotify()

    def add_watch(self, path: str) -> int:
        try:
            return self._add(path)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise WatchLimit(LIMIT_MESSAGE, path=path) from exc
            raise

    def _add(self, path: str) -> int:
        """inotify_add_watch(2) itself."""
        return int(self._inotify.add_watch(path, MASK))

    def remove_watch(self, wd: int) -> None:
        try:
            self._inotify.rm_watch(wd)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # the kernel removed it already (its folder is gone)
                raise

    def read(self, timeout: float) -> list[RawEvent]:
        events = self._inotify.read(timeout=max(0, int(timeout * 1000)))
        return [RawEvent(e.wd, e.mask, e.cookie, os.fsdecode(e.name)) for e in events]

    def close(self) -> None:
        self._inotify.close()
