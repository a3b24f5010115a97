"""The worker pool of named processors: chunks out, each file's result back into its chunk; a hung or dead
worker is replaced.

pebble's ProcessPool does the process work: a worker that dies is replaced, workers are recycled after
`max_tasks` tasks, a task past its timeout (here only a backstop: the chunk's files' deadlines summed) has
its worker killed. This module adds the per-file policy on top: a worker arms each file's deadline itself
(the worker is ended when a file passes it) and marks which file of its chunk it is on, so when a chunk
loses its worker the file at fault is known; it is tried once more on its own (a new task, so in a worker
that did not just fail) and quarantined if that fails too; the other files of the chunk go again, unharmed.
A worker killed while an external tool runs for its file takes the tool's process group with it.

What a scan pays per file is kept small (issue 18): a chunk has one future, not one per file, and its
results come back as the worker made them, each file's meta already JSON text that the store writes as it is.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import multiprocessing.process
import os
import signal
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

import pebble
import structlog

from scanguard.config import ScanConfig
from scanguard.errors import WorkersUnavailable
from scanguard.processing import tools, worker
from scanguard.processing.chunk import Chunk
from scanguard.processing.context import FileContext, FileOutcome, Result
from scanguard.processing.preload import forkserver_preload

log = structlog.get_logger("scanguard.workers")
CHUNK_FILES = 64  # a chunk's IPC is small next to 16 files' reading; each file has its own deadline
CHUNK_GRACE = 5.0  # the backstop past a chunk's summed deadlines, for a worker whose own deadline failed
# pebble replaces a worker that retired (after worker_max_files) or died on its next status poll, every
# CONSTS.sleep_unit (0.1 s by default): workers that retire together left the cores idle that long each
# time. The setting is pebble's, for the whole process; polling every 20 ms costs an idle service 0.05 % of
# a core.
PEBBLE_POLL = 0.02
SLOTS = 1 << 16  # tasks in flight at once, each with its progress mark
MARK_BYTES = 4
SLOT_BYTES = MARK_BYTES * worker.MARK_FIELDS


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Marks:
    """Owns the shared file of per-task progress marks: workers write which file they are on, the pool reads it."""

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="scanguard-marks-")
        try:
            os.ftruncate(fd, SLOTS * SLOT_BYTES)
            self._map = mmap.mmap(fd, SLOTS * SLOT_BYTES)
        finally:
            os.close(fd)
        self._view = memoryview(self._map).cast(worker.MARK)
        self._free = list(range(SLOTS - 2, -1, -1))  # the last slot is scratch, for when all are taken
        self._taken: set[int] = set()
        self._lock = threading.Lock()
        self._closed = False

    def _field(self, slot: int, field: int) -> int:
        return slot * worker.MARK_FIELDS + field

    def take(self) -> int:
        with self._lock:
            if self._closed:
                return SLOTS - 1
            slot = self._free.pop() if self._free else SLOTS - 1
            self._view[self._field(slot, worker.FILE)] = 0
            self._view[self._field(slot, worker.TOOL)] = 0
            if slot != SLOTS - 1:
                self._taken.add(slot)
            return slot

    def give(self, slot: int) -> tuple[int, int]:
        """Free a task's slot; returns its mark (1 + the index of the file it was on; 0: none, or unknown)
        and the process group of the tool that was running for that file (0: none, or unknown)."""
        with self._lock:
            if slot == SLOTS - 1 or self._closed:
                return 0, 0
            mark = int(self._view[self._field(slot, worker.FILE)])
            tool = int(self._view[self._field(slot, worker.TOOL)])
            self._taken.discard(slot)
            self._free.append(slot)
            return mark, tool

    def tools(self) -> list[int]:
        """The process groups of the tools running for the tasks in flight."""
        with self._lock:
            if self._closed:
                return []
            found = (int(self._view[self._field(slot, worker.TOOL)]) for slot in self._taken)
            return [pgid for pgid in found if pgid > 0]

    def close(self) -> None:
        """Unmap and remove the file; an abandoned pool's late callbacks then read nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._view.release()
            self._map.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


@dataclass(frozen=True, slots=True, eq=False)
class _Generation:
    """One pebble pool and its marks: made, renewed and retired together. A task's callback names the
    generation it ran in, so a retired pool's late news (pebble aborts its tasks as it stops) can neither
    break its successor nor free a slot in its successor's marks."""

    pool: pebble.ProcessPool
    marks: _Marks


@dataclass(slots=True, eq=False, weakref_slot=True)
class Submission:
    """One scan's files in the pool, in chunks (each file's result is its chunk's), and the pool tasks
    still working for them."""

    chunks: list[Chunk]
    _tasks: set[Future[Any]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancelled: bool = False

    def done(self) -> bool:
        return all(chunk.finished for chunk in self.chunks)

    def outcomes(self, timeout: float) -> list[FileOutcome]:
        """Every file's outcome, in order, once all are in (raises a chunk's error, e.g. WorkersUnavailable)."""
        deadline = time.monotonic() + timeout
        out: list[FileOutcome] = []
        for chunk in self.chunks:
            chunk.future.result(timeout=max(0.0, deadline - time.monotonic()))
            for index in range(len(chunk.contexts)):
                meta, error, reason = chunk.result(index)
                out.append(FileOutcome(None if meta is None else json.loads(meta), error, reason))
        return out

    def cancel(self) -> None:
        """Stop working for these files: queued tasks are dropped, running ones have their worker stopped."""
        with self._lock:
            self._cancelled = True
            tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for chunk in self.chunks:
            chunk.fail(CancelledError())


class FilePool:
    """Owns the pebble process pool that runs the named processors, and the retry-then-quarantine policy."""

    def __init__(self, names: Sequence[str], config: ScanConfig) -> None:
        self.names = tuple(names)
        self.config = config
        self.file_timeout = config.file_timeout
        self.workers = config.worker_count
        self._lock = threading.Lock()
        self._submissions: weakref.WeakSet[Submission] = weakref.WeakSet()
        self._closed = False
        self._broken: BaseException | None = None
        self._started = False  # pebble starts a pool (and its workers) on the first task
        pebble.CONSTS.sleep_unit = min(pebble.CONSTS.sleep_unit, PEBBLE_POLL)
        self._current = self._new_generation()

    def _new_generation(self) -> _Generation:
        marks = _Marks()
        context = multiprocessing.get_context("forkserver")  # never a bare fork of a threaded process
        context.set_forkserver_preload(forkserver_preload(self.names))
        pool = pebble.ProcessPool(
            max_workers=self.workers,
            max_tasks=max(1, self.config.worker_max_files // CHUNK_FILES),
            initializer=worker.initialize,
            initargs=(self.config.worker_memory_limit, marks.path, self.file_timeout),
            context=context,
        )
        return _Generation(pool, marks)

    def _renew_if_broken(self) -> None:
        """A pool that broke down (its workers could not start, say) is replaced before new work goes in;
        the old one is stopped on a thread of its own, so the scan that found it broken does not wait."""
        with self._lock:
            if self._broken is None or self._closed:
                return
            old = self._current
            self._current = self._new_generation()
            self._started = False
            log.warning("workers.renewed", after=f"{type(self._broken).__name__}: {self._broken}")
            self._broken = None
        threading.Thread(
            target=_retire,
            args=(old, self.file_timeout),
            name="scanguard-pool-retire",
            daemon=True,
        ).start()

    def check(self) -> None:
        """Notice a pool that broke down without telling its tasks (pebble leaves queued tasks pending when
        its workers die outside any task, e.g. in their initializer); called by scans while they wait."""
        current = self._current
        if self._started and not self._closed and self._broken is None and not current.pool.active:
            self._break(RuntimeError("the pool stopped working (its workers expired)"), current)

    def _break(self, error: BaseException, generation: _Generation) -> None:
        """The pool broke down: every unfinished chunk of every submission fails the scan it belongs to.
        News from a pool already retired is old: its files failed when it broke."""
        with self._lock:
            if self._closed or generation is not self._current:
                return
            self._broken = error
            submissions = list(self._submissions)
        log.error("workers.broken", error=f"{type(error).__name__}: {error}")
        failure = WorkersUnavailable(f"the worker pool broke down: {type(error).__name__}: {error}")
        for sub in submissions:
            for chunk in sub.chunks:
                chunk.fail(failure)

    def chunk_size(self, files: int) -> int:
        """Files per chunk: CHUNK_FILES, or fewer when that spreads a small submission over every worker."""
        return max(1, min(CHUNK_FILES, -(-files // self.workers)))

    def submit(self, contexts: Sequence[FileContext]) -> Submission:
        """Queue files for processing, in chunks; each file's result is its chunk's, never an exception
        of its own (a chunk fails as a whole only when the pool breaks down or the scan lets go)."""
        self._renew_if_broken()
        size = self.chunk_size(len(contexts))
        sub = Submission([Chunk(contexts[at : at + size]) for at in range(0, len(contexts), size)])
        with self._lock:  # _break walks the set on pebble's callback thread
            self._submissions.add(sub)
        for chunk in sub.chunks:
            self._schedule(sub, chunk, 0, len(chunk.contexts))
        return sub

    def _schedule(self, sub: Submission, chunk: Chunk, start: int, stop: int) -> None:
        """Run the chunk's files start..stop-1 as one task."""
        if start >= stop:
            return
        with sub._lock:
            if sub._cancelled:
                return
            while True:
                generation = self._current
                slot = generation.marks.take()
                try:
                    task = generation.pool.schedule(
                        worker.process_chunk,
                        args=(self.names, chunk.contexts[start:stop], slot),
                        timeout=self.file_timeout * (stop - start) + CHUNK_GRACE,
                    )
                    break
                except RuntimeError as exc:  # closed (the service is stopping) or broken down
                    generation.marks.give(slot)
                    if generation is not self._current:
                        continue  # renewed by another scan meanwhile: the new pool takes them
                    if not self._closed:
                        self._break(exc, generation)
                    chunk.fill(start, [(None, f"worker pool stopped: {exc}", "error")] * (stop - start))
                    return
            sub._tasks.add(task)
            self._started = True
        task.add_done_callback(lambda done: self._done(sub, done, chunk, start, stop, slot, generation))

    def _done(
        self,
        sub: Submission,
        task: Future[Any],
        chunk: Chunk,
        start: int,
        stop: int,
        slot: int,
        generation: _Generation,
    ) -> None:
        with sub._lock:
            sub._tasks.discard(task)
        mark, tool = generation.marks.give(slot)
        if generation is not self._current:  # a retired pool's: its files failed when it broke down
            tools.kill_group(tool)
            return
        try:
            results = task.result()
        except CancelledError:
            tools.kill_group(tool)
            return
        except BrokenProcessPool as exc:
            tools.kill_group(tool)
            self._break(exc, generation)
            return
        except (FutureTimeout, pebble.ProcessExpired) as exc:
            # the worker is gone; its tool had the parent-death signal, not the tool's own children
            tools.kill_group(tool)
            # the file it was on is the suspect: tried once more, on its own; the files before it lost
            # their results and go again, those after it never ran
            at = start + max(mark, 1) - 1
            strikes = chunk.strikes[at] = chunk.strikes.get(at, 0) + 1
            self._schedule(sub, chunk, start, at)
            if strikes >= 2:
                chunk.fill(at, [self._quarantine(chunk.contexts[at], exc)])
            else:
                self._schedule(sub, chunk, at, at + 1)
            self._schedule(sub, chunk, at + 1, stop)
            return
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result: this task's files fail, not the pool
            chunk.fill(start, [(None, f"{type(exc).__name__}: {exc}", "error")] * (stop - start))
            return
        chunk.fill(start, results)

    def _quarantine(self, ctx: FileContext, exc: BaseException) -> Result:
        if isinstance(exc, pebble.ProcessExpired) and exc.exitcode != -worker.DEADLINE_SIGNAL:
            code = exc.exitcode
            if code < 0:
                reason, error = "signal", f"worker killed by signal {-code} ({_signal_name(-code)})"
            else:
                reason, error = "exit", f"worker exited with {code}"
        else:
            reason, error = "timeout", f"timeout: no result within {self.file_timeout:g} s"
        log.warning("workers.gave_up", job_id=ctx.job_id, path=ctx.path, reason=reason, error=error)
        return None, f"{error} (tried twice, the second time on its own)", reason

    def close(self, timeout: float) -> tuple[int, ...]:
        """Stop every worker within `timeout`: running tasks are dropped (their scans are stopping too).

        Returns the pids of the workers it gave up waiting for (empty when every worker is gone).
        """
        with self._lock:
            if self._closed:
                return ()
            self._closed = True
        return _retire(self._current, timeout)


def _workers(pool: pebble.ProcessPool) -> dict[int, BaseProcess]:
    """The pool's worker processes by pid. pebble keeps them private (this reads pebble 5's layout): it is
    the only way to know whom a stop left behind. dict() copies in C, so pebble's threads cannot upset it."""
    return dict(pool._pool_manager.worker_manager.workers)


def _retire(generation: _Generation, timeout: float) -> tuple[int, ...]:
    """Stop a pebble pool within `timeout`, whatever its workers do; returns the pids of those abandoned.

    pebble's stop()+join() stops the workers one after another (SIGTERM, 3 s, SIGKILL) and then waits for
    each without a bound, whatever join's timeout says: a worker stuck in uninterruptible I/O (a dead NFS
    mount) holds it for ever. So join runs on a daemon thread that is waited for up to `timeout`; the
    workers not known to be gone by then are sent SIGKILL, reported, and left to the kernel. They are also
    struck from multiprocessing's list of children, whose exit hooks (pebble's and its own) would otherwise
    wait for them without a bound when the service exits.
    """
    pool, marks = generation.pool, generation.marks
    known = _workers(pool)
    pool.stop()  # type: ignore[no-untyped-call] # pebble's stop() has no annotations
    stopper = threading.Thread(target=pool.join, name="scanguard-pool-stop", daemon=True)
    stopper.start()
    stopper.join(timeout)
    # pebble may abort the tasks in flight as it stops (their callbacks kill their tools) or, its message
    # loop gone first, drop them without a word: their tools go here either way
    for pgid in marks.tools():
        tools.kill_group(pgid)
    if not stopper.is_alive():
        marks.close()
        return ()
    known |= _workers(pool)
    # a worker is gone once its exit is known (the forkserver reports it on the sentinel): a poll, no read
    stuck = [proc for proc in known.values() if not multiprocessing.connection.wait([proc.sentinel], 0)]
    for proc in stuck:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type] # a started process has its pid
        multiprocessing.process._children.discard(proc)  # type: ignore[attr-defined]
    abandoned = tuple(sorted(proc.pid for proc in stuck if proc.pid is not None))
    log.error("workers.abandoned", pids=list(abandoned), after=timeout)
    marks.close()
    return abandoned
