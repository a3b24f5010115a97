"""The coalescer: a changed path is handed on once quiet for `settle`, or after `max_delay` at the latest,
but never while its size still changes (a file being written is never indexed half-written)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass


def file_size(path: str) -> int | None:
    """The size of a regular file, or None (gone, a folder, unreadable)."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_size if not os.path.isdir(path) else None


@dataclass(slots=True)
class _Entry:
    first: float  # first change since it was last handed on
    last: float  # latest change
    size: int | None  # size at the latest look


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
                self._entries[path] = _Entry(now, now, size_of(path))
            else:
                entry.last = now
                entry.size = size_of(path)

    def due(self, now: float, sizes: Callable[[str], int | None] | None = None) -> list[str]:
        """Take the paths that settled (quiet for `settle`) or waited `max_delay`, whose size held still
        since the latest look; one whose size moved is looked at again a `settle` later."""
        size_of = sizes or self.size_of
        ready: list[str] = []
        for path, entry in list(self._entries.items()):
            if now - entry.last < self.settle and now - entry.first < self.max_delay:
                continue
            size = size_of(path)
            if size != entry.size:
                entry.size, entry.last = size, now  # still being written: not yet, whatever max_delay says
                continue
            ready.append(path)
            del self._entries[path]
        return ready

    def clear(self) -> None:
        self._entries.clear()
