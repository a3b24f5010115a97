"""The coalescer: a changed path is handed on once quiet for `settle`, or after `max_delay` at the latest,
but never while its size still changes (a file being written is never indexed half-written)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass


def file_size(path: str) -> int | None:
    """The size of a regular file, or None (gone, a folder, unreadable)."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


@dataclass(slots=True)
class _Entry:
    first: float  # first change since it was last handed on
    last: float  # latest change
    size: int | None  # size at the latest look
    grew: float  # when its size was last seen to change (its first change counts as one)


class Coalescer:
    """Owns the changed paths of one library that have not settled yet."""

    def __init__(
        self, settle: float, max_delay: float, size_of: Callable[[str], int | None] = file_size
    ) -> None:
        self.settle = settle
        self.max_delay = max(max_delay, settle)
        self.size_of = size_of
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def touch(
        self, paths: Iterable[str], now: float, sizes: Callable[[str], int | None] | None = None
    ) -> None:
        """These paths changed at `now` (`sizes` maps a relative path to its current size)."""
        size_of = sizes or self.size_of
        for path in paths:
            entry = self._entries.get(path)
            if entry is None:
                self._entries[path] = _Entry(now, now, size_of(path), now)
                continue
            entry.last = now
            size = size_of(path)
            if size != entry.size:
                entry.size, entry.grew = size, now

    def due(self, now: float, sizes: Callable[[str], int | None] | None = None) -> list[str]:
        """Take the paths that settled (quiet for `settle`), or that waited `max_delay` while their size held
        still for a `settle`; a file whose size still changes is not taken, whatever max_delay says."""
        size_of = sizes or self.size_of
        ready: list[str] = []
        for path, entry in list(self._entries.items()):
            quiet = now - entry.last >= self.settle
            overdue = now - entry.first >= self.max_delay and now - entry.grew >= self.settle
            if not (quiet or overdue):
                continue
            size = size_of(path)
            if size != entry.size:  # written without an event (a network mount): a settle more
                entry.size, entry.grew, entry.last = size, now, now
                continue
            ready.append(path)
            del self._entries[path]
        return ready

    def clear(self) -> None:
        self._entries.clear()


SCOPE_LIMIT = 100
"""At most this many paths in one watch job's scope (the API's own limit for a scoped scan)."""


def bounded_scope(paths: Iterable[str], limit: int = SCOPE_LIMIT) -> tuple[str, ...] | None:
    """The changed paths as a job's scope of at most `limit` paths: while there are more, each is replaced
    by its folder (many changes in one folder scan that folder); None when only the whole library is left."""
    scope = sorted(set(paths))
    while len(scope) > limit:
        parents = sorted({path.rpartition("/")[0] for path in scope})
        if "" in parents:
            return None
        scope = parents
    return tuple(scope)
