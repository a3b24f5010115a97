"""The watch tree: one inotify watch per folder of a library, kept in step as folders come, move and go."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import structlog

from scanguard.errors import WatchLimit
from scanguard.watching.source import (
    ADDED,
    DROPPED,
    GONE,
    ISDIR,
    LIMIT_MESSAGE,
    MOVED_FROM,
    MOVED_TO,
    OVERFLOW,
    REMOVED,
    EventSource,
    RawEvent,
)

log = structlog.get_logger("scanguard.watching")


@dataclass(slots=True)
class Changes:
    """What one read of events means: the paths touched (relative, in order, each once), whether events
    were lost (overflow), whether the root itself went away."""

    paths: dict[str, None] = field(default_factory=dict)
    overflow: bool = False
    root_gone: bool = False
    events: int = 0

    def touch(self, rel: str) -> None:
        self.paths[rel] = None


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _under(rel: str, prefix: str) -> bool:
    return rel == prefix or rel.startswith(prefix + "/")


class WatchTree:
    """Owns the watches of one library root: folder ↔ watch descriptor, and the events' meaning."""

    def __init__(self, source: EventSource, root: str, max_watches: int = 0) -> None:
        self.source = source
        self.root = root
        self.max_watches = max_watches
        self._folders: dict[int, str] = {}  # wd → folder relative to the root ("" is the root)
        self._wds: dict[str, int] = {}

    @property
    def watches(self) -> int:
        return len(self._folders)

    @property
    def armed(self) -> bool:
        return "" in self._wds

    def arm(self) -> None:
        """Watch the root and every folder below it; on WatchLimit (or any error) hold none of them."""
        try:
            self.add_subtree("")
        except BaseException:
            self.disarm()
            raise

    def disarm(self) -> None:
        """Give every watch back to the kernel."""
        for wd in list(self._folders):
            try:
                self.source.remove_watch(wd)
            except OSError as exc:
                log.debug("watch.remove_failed", wd=wd, error=str(exc))
        self._folders.clear()
        self._wds.clear()

    def add_subtree(self, top: str) -> list[str]:
        """Watch `top` and the folders below it, each before it is listed (so nothing created meanwhile is
        missed); the files already there, relative to the root."""
        files: list[str] = []
        stack = [top]
        while stack:
            rel = stack.pop()
            if rel in self._wds:
                continue
            if self.max_watches and len(self._folders) >= self.max_watches:
                raise WatchLimit(LIMIT_MESSAGE, max_watches=self.max_watches)
            absolute = os.path.join(self.root, rel) if rel else self.root
            try:
                wd = self.source.add_watch(absolute)
            except (FileNotFoundError, NotADirectoryError):
                continue  # gone again before we got to it: its removal has its own event
            except PermissionError as exc:
                if not rel:
                    raise
                log.warning("watch.folder_unreadable", root=self.root, folder=rel, error=str(exc))
                continue  # the scan reports it; the backstop rescan covers it
            self._folders[wd] = rel
            self._wds[rel] = wd
            try:
                with os.scandir(absolute) as entries:
                    for entry in entries:
                        child = _join(rel, entry.name)
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(child)
                        else:
                            files.append(child)
            except (FileNotFoundError, NotADirectoryError):
                continue
        return files

    def _drop(self, prefix: str, *, remove: bool) -> None:
        for rel in [r for r in self._wds if _under(r, prefix)]:
            wd = self._wds.pop(rel)
            self._folders.pop(wd, None)
            if remove:
                try:
                    self.source.remove_watch(wd)
                except OSError as exc:
                    log.debug("watch.remove_failed", wd=wd, error=str(exc))

    def _rename(self, old: str, new: str) -> None:
        """A folder moved inside the library: its watches follow the inodes; only their names change."""
        for rel in [r for r in self._wds if _under(r, old)]:
            wd = self._wds.pop(rel)
            moved = new + rel[len(old) :]
            self._wds[moved] = wd
            self._folders[wd] = moved

    def _entry(self, changes: Changes, moved_from: dict[int, str], event: RawEvent, rel: str) -> None:
        """One event about an entry of a watched folder."""
        if not event.mask & ISDIR:
            changes.touch(rel)
        elif event.mask & REMOVED:
            changes.touch(rel)
            if event.mask & MOVED_FROM:  # perhaps renamed inside the library: paired with its MOVED_TO
                moved_from[event.cookie] = rel
            else:
                self._drop(rel, remove=False)
        elif event.mask & MOVED_TO:
            changes.touch(rel)  # a folder moved in is complete: scanned as one scope
            old = moved_from.pop(event.cookie, None)
            if old is not None:
                self._rename(old, rel)
            else:
                self.add_subtree(rel)
        elif event.mask & ADDED:
            for path in self.add_subtree(rel):  # created: the files already inside each settle alone
                changes.touch(path)

    def translate(self, events: list[RawEvent]) -> Changes:
        """Apply a read's events to the tree (new folders watched, moved ones renamed, gone ones dropped)
        and say which paths changed. A folder created with files inside is walked: none is lost."""
        changes = Changes(events=len(events))
        moved_from: dict[int, str] = {}  # cookie → folder moved away (paired with its MOVED_TO)
        for event in events:
            if event.mask & OVERFLOW:
                changes.overflow = True
                continue
            folder = self._folders.get(event.wd)
            if folder is None:
                continue  # a watch removed meanwhile
            if not event.name:
                if event.mask & GONE:
                    if folder == "":
                        changes.root_gone = True
                    elif event.mask & DROPPED:  # deleted or ignored, not merely moved
                        self._drop(folder, remove=False)
                continue
            self._entry(changes, moved_from, event, _join(folder, event.name))
        for rel in moved_from.values():  # moved out of the library: stop watching what left
            self._drop(rel, remove=True)
        return changes
