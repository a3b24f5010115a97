"""The files one scan walked but has not committed, in walk order: the committable prefix keeps the checkpoint exact."""

from __future__ import annotations

import collections
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from scanguard.processing.chunk import Chunk
from scanguard.processing.context import FileOutcome
from scanguard.records import FileRow, Identity, Moved
from scanguard.walk import WalkItem


@dataclass(slots=True)
class Entry:
    """One walked entry: skipped, unchanged (no row; perhaps its identity to record), moved (a known row
    takes this path, with no work), or a row to write once its per-file work is done: the pool's (file
    `index` of `chunk`) and the in-process processor's (`work`)."""

    item: WalkItem
    row: FileRow | None = None
    changed: bool = False
    work: tuple[Future[FileOutcome], ...] = ()
    moved: Moved | None = None
    identity: Identity | None = None
    chunk: Chunk | None = None
    index: int = 0

    @property
    def ready(self) -> bool:
        chunk = self.chunk
        if chunk is not None and not chunk.finished:
            return False
        work = self.work
        if not work:
            return True
        if len(work) == 1:
            return work[0].done()
        return all(f.done() for f in work)

    def blocker(self) -> Future[Any] | None:
        """What this entry's work still waits for (None: it is ready)."""
        if self.chunk is not None and not self.chunk.finished:
            return self.chunk.future
        return next((f for f in self.work if not f.done()), None)


@dataclass(slots=True)
class Segment:
    """The entries of one walked stretch, and the known rows in its path range that the walk did not see."""

    entries: list[Entry]
    vanished: list[tuple[str, int]]  # (path, id), in path order (the last stretch's run to the end)
    start: int = 0  # entries[:start] are committed
    ready_upto: int = 0  # entries[:ready_upto] are known to be ready (work only ever finishes)

    def advance(self) -> int:
        """How far the entries are ready, checking only past what is already known."""
        end, entries = self.ready_upto, self.entries
        while end < len(entries) and entries[end].ready:
            end += 1
        self.ready_upto = end
        return end


@dataclass(frozen=True, slots=True)
class Ready:
    """A committable prefix: every entry before its last is committed or in it."""

    entries: list[Entry]
    vanished_ids: tuple[int, ...]
    checkpoint: str | None


@dataclass(slots=True)
class Window:
    """Owns one scan's walked-but-uncommitted entries and hands out only prefixes whose work is done."""

    segments: collections.deque[Segment] = field(default_factory=collections.deque)
    pending: int = 0  # uncommitted entries

    def add(self, segment: Segment) -> None:
        self.segments.append(segment)
        self.pending += len(segment.entries)

    def __bool__(self) -> bool:
        return bool(self.segments)

    def head_complete(self) -> bool:
        """Whether the oldest segment's remaining entries are all done."""
        if not self.segments:
            return False
        head = self.segments[0]
        return head.advance() == len(head.entries)

    def head_blocker(self) -> Future[Any] | None:
        """The first unfinished piece of work of the oldest segment: what its next commit waits for."""
        if not self.segments:
            return None
        head = self.segments[0]
        end = head.advance()
        if end == len(head.entries):
            return None
        return head.entries[end].blocker()

    def take(self) -> Ready | None:
        """The ready prefix of the oldest segment (the segment leaves once it is all taken), or None."""
        if not self.segments:
            return None
        head = self.segments[0]
        end = head.advance()
        whole = end == len(head.entries)
        if end == head.start and not (whole and head.vanished):
            if whole:  # an empty tail segment with nothing vanished
                self.segments.popleft()
                return self.take()
            return None
        taken = head.entries[head.start : end]
        checkpoint = taken[-1].item.path if taken else None
        if whole:
            vanished = head.vanished
            self.segments.popleft()
        else:
            assert checkpoint is not None
            cut = 0
            while cut < len(head.vanished) and head.vanished[cut][0] <= checkpoint:
                cut += 1
            vanished, head.vanished = head.vanished[:cut], head.vanished[cut:]
            head.start = end
        self.pending -= len(taken)
        return Ready(taken, tuple(i for _, i in vanished), checkpoint)
