"""Moves keep identity, the filesystem side (DESIGN §12): which of a scan's new paths are known rows
moved there. No actors; the rows come from the store's one indexed lookup per stretch."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

from scanguard.records import Moved
from scanguard.store.moves import MoveSource, signed64
from scanguard.walk import Found

Lookup = Callable[[tuple[int, ...]], Sequence[MoveSource]]
"""The library's rows with one of these (signed) inodes."""


class MoveFinder:
    """Owns one scan's move decisions: which new paths are rows moved there, and the rows it has claimed.

    A row moves to a new path with its (device, inode, size, mtime) when its own path holds nothing any
    more (one lstat); a path that still holds a file keeps its row (a hard link, or a file replaced in
    place, makes the new path a new file). A row moves once per scan: a claimed row is never matched again,
    and the scan neither marks it vanished nor takes its old path's stale row for a later file there.
    """

    def __init__(self, root: str, lookup: Lookup) -> None:
        self.root = root
        self.lookup = lookup
        self.claimed: set[int] = set()  # ids of rows moved by this scan (committed or not yet)

    def find(self, fresh: Iterable[Found]) -> dict[str, Moved]:
        """The moved rows among these paths the database does not know, by new path."""
        candidates = [f for f in fresh if f.inode]  # 0: a filesystem that gives no inode numbers
        if not candidates:
            return {}
        sources: dict[tuple[int, int], list[MoveSource]] = {}
        for source in self.lookup(tuple(sorted({signed64(f.inode) for f in candidates}))):
            sources.setdefault((source.device, source.inode), []).append(source)
        moved: dict[str, Moved] = {}
        for found in candidates:
            device, inode = signed64(found.device), signed64(found.inode)
            for source in sources.get((device, inode), ()):
                if (
                    source.id in self.claimed
                    or source.path == found.path
                    or source.size != found.size
                    or source.mtime != found.mtime
                    or not self._vacated(source.path)
                ):
                    continue
                self.claimed.add(source.id)
                moved[found.path] = Moved(
                    source.id, source.path, found.path, found.size, found.mtime, device, inode
                )
                break
        return moved

    def _vacated(self, rel: str) -> bool:
        """Whether a row's path holds nothing on disk now; an unreadable one is not known to."""
        try:
            os.lstat(os.path.join(self.root, rel))
        except (FileNotFoundError, NotADirectoryError):
            return True
        except OSError:
            return False
        return False
