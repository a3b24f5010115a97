"""How a walk gets its directories: listed when it asks (serial), or ahead of it by a few threads (a NAS).

On slow storage every listing and every stat is a round trip, and a serial walk waits for each in turn.
`Prefetcher` lists the directories the walk will open next — and stats their media files, which the
entries then hold (`os.DirEntry` caches its stat) — on a few daemon threads, smallest path first, at
most `lookahead` directories ahead. The walk still asks for every directory itself, in its own order,
so what it yields and where an error surfaces are exactly those of the serial walk.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from scanguard.walk import FileSystem

Row = tuple[str, os.DirEntry[str], bool]  # sort key (a directory as `name/`), the entry, is it a directory
Ident = tuple[int, int]  # (device, inode) of a directory, to cut symlink loops


def sorted_rows(fs: FileSystem, path: str, follow_symlinks: bool) -> list[Row]:
    """The entries of one directory with their sort key, in walk order; a directory sorts as `name/`."""
    out = []
    for entry in fs.scandir(path):
        try:
            is_dir = entry.is_dir(follow_symlinks=follow_symlinks)
        except OSError:
            is_dir = False
        out.append((entry.name + "/" if is_dir else entry.name, entry, is_dir))
    out.sort(key=_first)
    return out


def _first(row: Row) -> str:
    return row[0]


class Lister(Protocol):
    """Where a walk gets its directories. It asks in walk order: `ident` (when following links), then `rows`."""

    def ident(self, rel: str, path: str) -> Ident: ...

    def rows(self, rel: str, path: str) -> list[Row]: ...

    def close(self) -> None: ...


class SerialLister:
    """Lists a directory when the walk asks for it: the serial walk (`walkers = 1`)."""

    def __init__(self, fs: FileSystem, *, follow_symlinks: bool) -> None:
        self.fs = fs
        self.follow_symlinks = follow_symlinks

    def ident(self, rel: str, path: str) -> Ident:
        st = self.fs.stat(path, follow_symlinks=True)
        return (st.st_dev, st.st_ino)

    def rows(self, rel: str, path: str) -> list[Row]:
        return sorted_rows(self.fs, path, self.follow_symlinks)

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Plan:
    """What a prefetcher knows of the walk it serves.

    `enters(rel, name)`: the walk opens this directory (`rel` ends in `/`) unless it is a loop.
    `stats(rel, name)`: the walk stats this file.
    """

    follow_symlinks: bool
    enters: Callable[[str, str], bool]
    stats: Callable[[str, str], bool]


_QUEUED, _RUNNING, _DONE = "queued", "running", "done"

# storage counts as slow (worth listing ahead on threads) once the walk's own listings took this long per
# entry — a NAS round trip is ~1 ms, a warm local disk ~3 µs — and this long in all (one hiccup is not slow)
SLOW_PER_ENTRY = 50e-6
SLOW_AFTER = 0.005


class _Task:
    """One directory to list: its result, or the error the walk will meet when it asks for it."""

    __slots__ = ("ancestors", "error", "ident", "ident_error", "path", "rel", "rows", "state")

    def __init__(self, rel: str, path: str, ancestors: frozenset[Ident]) -> None:
        self.rel = rel
        self.path = path
        self.ancestors = ancestors  # the (dev, inode) of the directories above it: a loop is not listed
        self.state = _QUEUED  # changed under the prefetcher's lock, which is notified when one is done
        self.ident: Ident | None = None
        self.ident_error: OSError | None = None
        self.rows: list[Row] | None = None
        self.error: Exception | None = None


class Prefetcher:
    """Lists the walk's next directories on `walkers` daemon threads, at most `lookahead` ahead of it.

    Tasks run smallest path first, which is the walk's order; a directory the walk asks for before a
    thread took it is listed on the walk's own thread. Directories past which the walk has gone are
    dropped. The threads start once the walk's own listings show the storage is slow: on a fast local
    disk, handing directories between threads costs more than listing them. The threads are daemons, so a listing hung on a dead mount never holds up an exit; `close`
    lets them go once their current call returns.
    """

    def __init__(self, fs: FileSystem, plan: Plan, *, walkers: int, lookahead: int | None = None) -> None:
        self.fs = fs
        self.plan = plan
        self.walkers = walkers
        self.lookahead = lookahead or 4 * walkers
        self._cond = threading.Condition()
        self._queue: list[tuple[str, int, _Task]] = []  # a heap, smallest path first
        self._seq = itertools.count()
        self._tasks: dict[str, _Task] = {}  # every task the walk has not taken, by path
        self._held: set[_Task] = set()  # running or done, not taken yet: at most `lookahead`
        self._taken = ""  # the last directory the walk asked for; it only asks for larger ones
        self._last: _Task | None = None  # taken by `ident`, its rows still to come
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._inline_seconds = 0.0  # how long the walk's own listings took, until the threads start
        self._inline_entries = 0

    # ---- the walk's side ------------------------------------------------------------------------

    def ident(self, rel: str, path: str) -> Ident:
        task = self._take(rel, path)
        if task.error is not None:
            raise task.error
        if task.ident_error is not None:
            raise task.ident_error
        assert task.ident is not None
        return task.ident

    def rows(self, rel: str, path: str) -> list[Row]:
        task = self._take(rel, path)
        self._last = None
        if task.error is not None:
            raise task.error
        if task.ident_error is not None:
            raise task.ident_error
        if task.rows is None:  # a loop to the prefetcher (its ancestors), not to the walk
            return sorted_rows(self.fs, path, self.plan.follow_symlinks)
        return task.rows

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._tasks.clear()
            self._held.clear()
            self._cond.notify_all()

    def _take(self, rel: str, path: str) -> _Task:
        last = self._last
        if last is not None and last.rel == rel:
            return last
        with self._cond:
            self._taken = rel
            for held in [t for t in self._held if t.rel < rel]:  # passed by the walk: never asked for
                self._held.discard(held)
                self._tasks.pop(held.rel, None)
            task = self._tasks.pop(rel, None)
            if task is None:
                task = _Task(rel, path, frozenset())  # not foreseen (the root): listed here
            elif task in self._held:
                self._held.discard(task)
            inline = task.state == _QUEUED
            if inline:
                task.state = _RUNNING
            self._cond.notify_all()
        if inline:
            started = time.monotonic()
            self._run(task, stat=False)  # on the walk's own thread, which stats its files itself
            spent = time.monotonic() - started + (0.0 if self._threads else self._sampled_stats(task))
            with self._cond:
                if not self._threads:
                    self._inline_seconds += spent
                    self._inline_entries += len(task.rows or ())
                    if not self._closed and self._slow():
                        self._start_threads()  # before `_finish`, which then queues the directories below
                self._finish(task)
        else:
            with self._cond:
                self._cond.wait_for(lambda: task.state == _DONE)
        self._last = task
        return task

    # ---- the threads' side ----------------------------------------------------------------------

    def _slow(self) -> bool:
        spent = self._inline_seconds
        return spent >= SLOW_AFTER and spent >= SLOW_PER_ENTRY * self._inline_entries

    def _start_threads(self) -> None:
        for i in range(self.walkers):
            thread = threading.Thread(target=self._work, name=f"scanguard-lister-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while True:
            with self._cond:
                task = self._next()
                if task is None:
                    return
            self._run(task)
            with self._cond:
                self._finish(task)

    def _next(self) -> _Task | None:
        """The smallest queued directory the walk has not passed, once fewer than `lookahead` are held."""
        while not self._closed:
            if len(self._held) < self.lookahead:
                while self._queue:
                    _, _, task = heapq.heappop(self._queue)
                    if task.state != _QUEUED or self._tasks.get(task.rel) is not task:
                        continue  # taken by the walk, or dropped
                    if task.rel < self._taken:
                        del self._tasks[task.rel]
                        continue
                    task.state = _RUNNING
                    self._held.add(task)
                    return task
            self._cond.wait()
        return None

    def _run(self, task: _Task, *, stat: bool = True) -> None:
        """List one directory and, with `stat` (a lister thread, ahead of the walk), stat its media files:
        each entry keeps its stat for the walk."""
        plan, fs = self.plan, self.fs
        try:
            if plan.follow_symlinks:
                try:
                    st = fs.stat(task.path, follow_symlinks=True)
                except OSError as exc:
                    task.ident_error = exc
                    return
                task.ident = (st.st_dev, st.st_ino)
                if task.ident in task.ancestors:
                    return  # a loop: the walk will not list it
            rows = sorted_rows(fs, task.path, plan.follow_symlinks)
            if stat:
                for key, entry, is_dir in rows:
                    if not is_dir and plan.stats(task.rel + key, entry.name):
                        # a failure is not cached: the walk stats the entry again and reports it unreadable
                        with contextlib.suppress(OSError):
                            entry.stat(follow_symlinks=plan.follow_symlinks)
            task.rows = rows
        except Exception as exc:  # noqa: BLE001 - raised on the walk's thread when it asks for this directory
            task.error = exc

    def _sampled_stats(self, task: _Task) -> float:
        """What the walk's stats of a listed directory's files will cost the storage, from one of them
        timed (its stat is then cached for the walk)."""
        files = [entry for _, entry, is_dir in task.rows or () if not is_dir]
        if not files:
            return 0.0
        started = time.monotonic()
        with contextlib.suppress(OSError):
            files[0].stat(follow_symlinks=self.plan.follow_symlinks)
        return len(files) * (time.monotonic() - started)

    def _finish(self, task: _Task) -> None:
        """Queue the directories under a listed one (called with the lock held)."""
        task.state = _DONE
        self._cond.notify_all()
        if self._closed or task.rows is None or task.rel < self._taken or not self._threads:
            return  # dropped meanwhile (everything under it lies before the walk too), or none to list it
        ancestors = task.ancestors
        if task.ident is not None:
            ancestors = ancestors | {task.ident}
        for key, entry, is_dir in task.rows:
            if not is_dir:
                continue
            rel = task.rel + key
            if self.plan.enters(rel, entry.name):
                child = _Task(rel, entry.path, ancestors)
                self._tasks[rel] = child
                heapq.heappush(self._queue, (rel, next(self._seq), child))
        self._cond.notify_all()


def make_lister(fs: FileSystem, plan: Plan, walkers: int) -> Lister:
    """The serial lister for one walker, a prefetcher for more."""
    if walkers <= 1:
        return SerialLister(fs, follow_symlinks=plan.follow_symlinks)
    return Prefetcher(fs, plan, walkers=walkers)


class BackgroundCount:
    """Counts a library's media files on daemon threads while the walk runs (the progress total).

    Names only, no stat: hidden entries are passed over, directories reached twice through links are
    counted once. One thread counts; up to `walkers` do once the listings show the storage is slow (as
    the prefetcher decides). `result()` is None until the count is done; `close()` stops it.
    """

    def __init__(
        self, root: str, media_type: Callable[[str], str | None], *, follow_symlinks: bool, walkers: int
    ) -> None:
        self.media_type = media_type
        self.follow_symlinks = follow_symlinks
        self.walkers = max(1, walkers)
        lock = threading.Lock()
        self._work_ready = threading.Condition(lock)  # the counting threads wait here for directories
        self._finished = threading.Condition(lock)  # and `wait` here for the count
        self._queue = [root]
        self._pending = 1  # directories queued or being listed
        self._total = 0
        self._seen: set[Ident] = set()
        self._closed = False
        self._result: int | None = None
        self._threads = 0
        self._seconds = 0.0  # listing time and entries, until every thread is started
        self._entries = 0
        self._start_thread()

    def _start_thread(self) -> None:
        name = f"scanguard-count-{self._threads}"
        self._threads += 1
        threading.Thread(target=self._work, name=name, daemon=True).start()

    def result(self) -> int | None:
        with self._finished:
            return self._result

    def wait(self, timeout: float | None = None) -> int | None:
        """The count, waiting at most `timeout` for it (tests)."""
        with self._finished:
            self._finished.wait_for(lambda: self._result is not None or self._closed, timeout)
            return self._result

    def close(self) -> None:
        with self._finished:
            self._closed = True
            self._work_ready.notify_all()
            self._finished.notify_all()

    def _work(self) -> None:
        while True:
            with self._work_ready:
                self._work_ready.wait_for(lambda: bool(self._queue) or self._pending == 0 or self._closed)
                if self._closed or not self._queue:
                    return
                path = self._queue.pop()
            started = time.monotonic()
            dirs, media = self._list(path)
            spent = time.monotonic() - started
            with self._work_ready:
                queued = 0
                for sub, ident in dirs:
                    if ident is not None:
                        if ident in self._seen:
                            continue
                        self._seen.add(ident)
                    self._queue.append(sub)
                    queued += 1
                self._pending += queued - 1
                self._total += media
                if self._threads < self.walkers:
                    self._seconds += spent
                    self._entries += len(dirs) + media
                    if self._seconds >= SLOW_AFTER and self._seconds >= SLOW_PER_ENTRY * self._entries:
                        while self._threads < self.walkers:
                            self._start_thread()
                if self._pending == 0:
                    self._result = self._total
                    self._work_ready.notify_all()  # the threads leave
                    self._finished.notify_all()
                elif queued > 1:
                    self._work_ready.notify(queued - 1)  # this thread takes one itself

    def _list(self, path: str) -> tuple[list[tuple[str, Ident | None]], int]:
        """One directory's subdirectories (with their ident when following links) and its media count."""
        follow = self.follow_symlinks
        dirs: list[tuple[str, Ident | None]] = []
        media = 0
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            return dirs, media
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=follow):
                    ident = None
                    if follow:
                        st = entry.stat()
                        ident = (st.st_dev, st.st_ino)
                    dirs.append((entry.path, ident))
                elif self.media_type(entry.name) is not None and entry.is_file(follow_symlinks=follow):
                    media += 1
            except OSError:
                continue
        return dirs, media
