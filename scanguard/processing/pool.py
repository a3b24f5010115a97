"""The worker pool of named processors: chunks out, one outcome per file back; a hung or dead worker is replaced.

pebble's ProcessPool does the process work: a task past its timeout has its worker killed, a worker that
dies is replaced, workers are recycled after `max_tasks` tasks. This module adds the per-file policy on
top: a chunk that times out or loses its worker is split, each of its files tried once more on its own
(in a new task, so in a worker that did not just fail), and a file that fails alone is quarantined.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import pebble
import structlog

from scanguard.config import ScanConfig
from scanguard.processing import worker
from scanguard.processing.context import FileContext, FileOutcome

log = structlog.get_logger("scanguard.workers")
CHUNK_FILES = 16  # a chunk's IPC is small next to 16 files' reading; the deadline covers the whole chunk


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(slots=True)
class Submission:
    """One scan's files in the pool: a future per file, and the pool tasks still working for them."""

    futures: list[Future[FileOutcome]]
    _tasks: set[Future[Any]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancelled: bool = False

    def cancel(self) -> None:
        """Stop working for these files: queued tasks are dropped, running ones have their worker stopped."""
        with self._lock:
            self._cancelled = True
            tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for fut in self.futures:
            fut.cancel()


class FilePool:
    """Owns the pebble process pool that runs the named processors, and the retry-then-quarantine policy."""

    def __init__(self, names: Sequence[str], config: ScanConfig) -> None:
        self.names = tuple(names)
        self.file_timeout = config.file_timeout
        self.workers = config.worker_count
        context = multiprocessing.get_context("forkserver")  # never a bare fork of a threaded process
        context.set_forkserver_preload(["scanguard.processing.worker"])
        self._pool = pebble.ProcessPool(
            max_workers=self.workers,
            max_tasks=max(1, config.worker_max_files // CHUNK_FILES),
            initializer=worker.initialize,
            initargs=(config.worker_memory_limit,),
            context=context,
        )
        self._closed = False

    def submit(self, contexts: Sequence[FileContext]) -> Submission:
        """Queue files for processing; each future resolves to the file's outcome, never to an exception."""
        sub = Submission([Future() for _ in contexts])
        for start in range(0, len(contexts), CHUNK_FILES):
            end = start + CHUNK_FILES
            self._schedule(sub, list(contexts[start:end]), sub.futures[start:end], alone=False)
        return sub

    def _schedule(
        self,
        sub: Submission,
        contexts: list[FileContext],
        futures: list[Future[FileOutcome]],
        *,
        alone: bool,
    ) -> None:
        with sub._lock:
            if sub._cancelled:
                return
            try:
                task = self._pool.schedule(
                    worker.process_chunk, args=(self.names, contexts), timeout=self.file_timeout
                )
            except RuntimeError as exc:  # the pool is closed: the service is stopping
                for fut in futures:
                    _settle(fut, FileOutcome.failed("error", f"worker pool stopped: {exc}"))
                return
            sub._tasks.add(task)
        task.add_done_callback(lambda done: self._done(sub, done, contexts, futures, alone=alone))

    def _done(
        self,
        sub: Submission,
        task: Future[Any],
        contexts: list[FileContext],
        futures: list[Future[FileOutcome]],
        *,
        alone: bool,
    ) -> None:
        with sub._lock:
            sub._tasks.discard(task)
        try:
            results = task.result()
        except CancelledError:
            return
        except (FutureTimeout, pebble.ProcessExpired) as exc:
            if not alone:
                # which file it was is unknown: each is tried once more, on its own, in a new task
                for ctx, fut in zip(contexts, futures, strict=True):
                    self._schedule(sub, [ctx], [fut], alone=True)
                return
            _settle(futures[0], self._quarantine(contexts[0], exc))
            return
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result: this chunk's files fail, not the pool
            for fut in futures:
                _settle(fut, FileOutcome.failed("error", f"{type(exc).__name__}: {exc}"))
            return
        for fut, (meta, error) in zip(futures, results, strict=True):
            _settle(fut, FileOutcome(meta, error, "error" if error else None))

    def _quarantine(self, ctx: FileContext, exc: BaseException) -> FileOutcome:
        if isinstance(exc, pebble.ProcessExpired):
            code = exc.exitcode
            if code < 0:
                reason, error = "signal", f"worker killed by signal {-code} ({_signal_name(-code)})"
            else:
                reason, error = "exit", f"worker exited with {code}"
        else:
            reason, error = "timeout", f"timeout: no result within {self.file_timeout:g} s"
        log.warning("workers.gave_up", job_id=ctx.job_id, path=ctx.path, reason=reason, error=error)
        return FileOutcome.failed(reason, f"{error} (tried twice, the second time on its own)")

    def close(self, timeout: float) -> None:
        """Stop every worker: running tasks are abandoned (their scans are stopping too)."""
        if self._closed:
            return
        self._closed = True
        self._pool.stop()  # type: ignore[no-untyped-call] # pebble's stop() has no annotations
        self._pool.join(timeout=timeout)


def _settle(fut: Future[FileOutcome], outcome: FileOutcome) -> None:
    if fut.set_running_or_notify_cancel():
        fut.set_result(outcome)
