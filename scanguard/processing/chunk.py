"""One chunk of a submission's files: the pool's unit of work, and where its files' results land."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

from scanguard.processing.context import FileContext, Result


class Chunk:
    """Owns one chunk's files and their results: filled a stretch at a time, finished once every file's is in.

    The pool fills it from its callback thread; a scan reads `finished` (a plain flag, set before the future
    resolves) and waits on `future` (one per chunk, not one per file: the scan's per-file costs stay small).
    """

    __slots__ = ("_left", "_lock", "contexts", "error", "finished", "future", "results", "strikes")

    def __init__(self, contexts: Sequence[FileContext]) -> None:
        self.contexts = contexts
        self.results: list[Result | None] = [None] * len(contexts)
        self.strikes: dict[int, int] = {}  # by file index: failures while it was the file being worked on
        self.error: BaseException | None = None  # set when the chunk's files can have no results
        self.finished = False
        self.future: Future[None] = Future()
        self._left = len(contexts)
        self._lock = threading.Lock()

    def fill(self, start: int, results: Sequence[Result]) -> None:
        """The results of the files from `start` on; the chunk's last missing ones finish it."""
        with self._lock:
            if self.finished:
                return
            self.results[start : start + len(results)] = results
            self._left -= len(results)
            if self._left > 0:
                return
            self.finished = True
        self.future.set_result(None)

    def fail(self, error: BaseException) -> None:
        """No more results will come (the pool broke down, or the scan let go): reading one raises `error`.
        A chunk already finished keeps its results."""
        with self._lock:
            if self.finished:
                return
            self.error = error
            self.finished = True
        self.future.set_result(None)

    def result(self, index: int) -> Result:
        """A finished chunk's result for one of its files (raises the chunk's error if it failed)."""
        if self.error is not None:
            raise self.error
        result = self.results[index]
        assert result is not None, "a finished chunk has every file's result"
        return result
