"""One scan's per-file work: what it handed to the worker pool and its in-process runner, merged back into rows."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from scanguard.metrics import Metrics
from scanguard.processing.context import FileContext, FileOutcome, Processor
from scanguard.processing.inline import InlineRunner
from scanguard.processing.pool import FilePool, Submission
from scanguard.processing.registry import media_types
from scanguard.processing.window import Entry
from scanguard.records import FileRow, JsonText
from scanguard.walk import Found

Failure = tuple[str, str, str]  # (path, reason, error) of a file whose work failed


@dataclass(frozen=True, slots=True)
class FileWork:
    """The per-file work a scan may use: the shared worker pool and the host's in-process processor."""

    pool: FilePool | None = None
    processor: Processor | None = None
    metrics: Metrics | None = None

    @property
    def active(self) -> bool:
        return self.pool is not None or self.processor is not None


class ScanWork:
    """Owns one scan's share of the per-file work: its pool submissions, its inline runner, their outcomes."""

    def __init__(self, work: FileWork, library_id: int, job_id: int, root: str, file_timeout: float) -> None:
        self.work = work
        self.library_id = library_id
        self.job_id = job_id
        self.root = root
        self.file_timeout = file_timeout
        self._pool_types = media_types(work.pool.names) if work.pool is not None else None
        self._submissions: list[Submission] = []
        self._inline: InlineRunner | None = None

    @property
    def active(self) -> bool:
        return self.work.active

    def start(self) -> None:
        """Start the in-process runner, if the host gave a processor."""
        if self.work.processor is not None:
            self._inline = InlineRunner(self.work.processor, self.file_timeout, self._abandoned)

    def _abandoned(self) -> None:
        if self.work.metrics is not None:
            self.work.metrics.processor_threads_abandoned.inc()

    def reads(self, media_type: str) -> bool:
        """Whether a named processor reads this media type (an unchanged file without metadata is read)."""
        return self.work.pool is not None and (self._pool_types is None or media_type in self._pool_types)

    def _context(self, item: Found) -> FileContext:
        return FileContext(
            self.library_id,
            self.job_id,
            self.root,
            item.path,
            os.path.join(self.root, item.path),
            item.size,
            item.mtime,
            item.media_type,
        )

    def dispatch(self, entries: list[Entry]) -> None:
        """Start the work of every row that needs it: the pool's files go in one submission."""
        if not self.work.active:
            return
        pooled: list[tuple[Entry, FileContext]] = []
        for entry in entries:
            if entry.row is None or not isinstance(entry.item, Found):
                continue
            ctx = self._context(entry.item)
            if self._inline is not None:
                entry.work = (self._inline.submit(ctx),)
            if self.reads(ctx.media_type):
                pooled.append((entry, ctx))
        if pooled and self.work.pool is not None:
            sub = self.work.pool.submit([ctx for _, ctx in pooled])
            self._submissions.append(sub)
            at = 0
            for chunk in sub.chunks:
                for index in range(len(chunk.contexts)):
                    entry = pooled[at][0]
                    entry.chunk, entry.index = chunk, index
                    at += 1

    def watch(self) -> None:
        """While the scan waits: quarantine an in-process file past its deadline, notice a broken pool."""
        if self._inline is not None:
            self._inline.expire()
        if self.work.pool is not None:
            self.work.pool.check()

    @staticmethod
    def row(entry: Entry, failures: list[Failure]) -> FileRow:
        """The entry's row with its work's metadata and errors (a FatalProcessorError, or the pool's
        WorkersUnavailable, is raised here)."""
        row = entry.row
        assert row is not None
        chunk = entry.chunk
        if chunk is None and not entry.work:
            return row
        errors: list[str] = []
        merged: dict[str, Any] = {}
        for fut in entry.work:  # the in-process processor's
            outcome: FileOutcome = fut.result()
            if outcome.meta:
                merged.update(outcome.meta)
            if outcome.error:
                errors.append(outcome.error)
                failures.append((row.path, outcome.reason or "error", outcome.error))
        text: str | None = None
        if chunk is not None:  # the pool's
            text, error, reason = chunk.result(entry.index)
            if error is not None:
                errors.append(error)
                failures.append((row.path, reason or "error", error))
        meta: dict[str, Any] | JsonText | None = merged or None
        if text is not None:
            # encoded by the worker: the store writes it as it is, unless both kinds of work gave results
            meta = {**merged, **json.loads(text)} if merged else JsonText(text)
        return FileRow(
            row.path,
            row.size,
            row.mtime,
            row.media_type,
            row.quick_hash,
            error="; ".join(errors) or None,
            meta=meta,
            device=row.device,
            inode=row.inode,
        )

    def prune(self) -> None:
        """Let go of submissions whose results are all in rows (memory stays flat over a long scan)."""
        self._submissions = [sub for sub in self._submissions if not sub.done()]

    def count(self, failures: list[Failure]) -> None:
        """Committed failures, by reason, in the metrics."""
        if self.work.metrics is not None:
            for _, reason, _ in failures:
                self.work.metrics.files_quarantined.labels(reason).inc()

    def release(self) -> None:
        """Give back what this scan holds in the pool and its runner's thread (idempotent)."""
        submissions, self._submissions = self._submissions, []
        for sub in submissions:
            sub.cancel()
        if self._inline is not None:
            self._inline.stop()
            self._inline = None
