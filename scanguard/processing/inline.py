"""A host's in-process processor, run on its own thread under the same per-file deadline as the workers.

A thread cannot be killed: a file past its deadline is quarantined and the thread abandoned (it is a daemon,
so it never holds the process at exit; its late result is dropped); a new thread takes the next file.
A crash of native code here takes the process with it — only the worker pool can isolate that.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import structlog

from scanguard.errors import FatalProcessorError
from scanguard.processing.context import FileContext, FileOutcome, Processor, describe

log = structlog.get_logger("scanguard.inline")
_Item = tuple[FileContext, "Future[FileOutcome]"]
_ids = itertools.count(1)


class InlineRunner:
    """Owns the thread that runs one scan's in-process processor, and abandons it past a file's deadline."""

    def __init__(self, processor: Processor, file_timeout: float, on_abandoned: Callable[[], None]) -> None:
        self.processor = processor
        self.file_timeout = file_timeout
        self.on_abandoned = on_abandoned
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._generation = 0
        self._current: tuple[_Item, float] | None = None
        self._stopped = False
        self._spawn()

    def _spawn(self) -> None:
        generation = self._generation
        thread = threading.Thread(
            target=self._loop, args=(generation,), name=f"scanguard-processor-{next(_ids)}", daemon=True
        )
        thread.start()

    def submit(self, ctx: FileContext) -> Future[FileOutcome]:
        fut: Future[FileOutcome] = Future()
        self._queue.put((ctx, fut))
        return fut

    def _loop(self, generation: int) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            ctx, fut = item
            with self._lock:
                if generation != self._generation:  # abandoned meanwhile: hand the file back, end
                    self._queue.put(item)
                    return
                self._current = (item, time.monotonic())
            try:
                outcome = FileOutcome(self.processor(ctx))
            except FatalProcessorError as exc:
                # the scan crashes on this file: nothing after it is worth processing now
                if self._finish(generation, fut, exc):
                    self.stop()
                return
            except Exception as exc:  # noqa: BLE001 - a host processor failing on one file is that file's error
                outcome = FileOutcome.failed("error", describe(exc))
            if not self._finish(generation, fut, outcome):
                return  # abandoned while it worked: its result is dropped, a new thread goes on

    def _finish(self, generation: int, fut: Future[FileOutcome], result: FileOutcome | BaseException) -> bool:
        with self._lock:
            if generation != self._generation:
                return False
            self._current = None
        if isinstance(result, BaseException):
            fut.set_exception(result)
        else:
            fut.set_result(result)
        return True

    def expire(self) -> None:
        """Quarantine the file in hand if it passed its deadline: abandon its thread, start another."""
        with self._lock:
            if self._current is None or self._stopped:
                return
            (ctx, fut), started = self._current
            if time.monotonic() - started < self.file_timeout:
                return
            self._generation += 1
            self._current = None
            self._spawn()
        log.warning("scan.processor_abandoned", job_id=ctx.job_id, path=ctx.path, after=self.file_timeout)
        self.on_abandoned()
        fut.set_result(
            FileOutcome.failed(
                "timeout",
                f"timeout: the in-process processor gave no result within {self.file_timeout:g} s "
                "(its thread was abandoned)",
            )
        )

    def stop(self) -> None:
        """Drop the queued files and end the thread; a thread stuck in the processor is left (a daemon)."""
        with self._lock:
            self._stopped = True
            self._generation += 1  # a thread inside the processor ends when it returns, dropping its result
            self._current = None
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].cancel()
        self._queue.put(None)
