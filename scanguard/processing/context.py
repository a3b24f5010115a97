"""What a processor is given and what the scan gets back for one file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FileContext:
    """What a processor is told about one new or changed media file."""

    library_id: int
    job_id: int
    root: str
    path: str
    abs_path: str
    size: int
    mtime: float
    media_type: str

    def __reduce__(self) -> tuple[type[FileContext], tuple[int, int, str, str, str, int, float, str]]:
        # pickled as its values: a slotted dataclass's default state walks its fields for every file
        return (
            FileContext,
            (
                self.library_id,
                self.job_id,
                self.root,
                self.path,
                self.abs_path,
                self.size,
                self.mtime,
                self.media_type,
            ),
        )


Processor = Callable[[FileContext], "dict[str, Any] | None"]
"""Per-file work: its return value (JSON-able) is kept as the file's metadata; raising records an error."""

Result = tuple[str | None, str | None, str | None]
"""One file's result from the worker pool: its meta as JSON text (encoded in the worker: the service writes
it as it is), its error, and why (None: no error)."""

QUARANTINE_REASONS = ("timeout", "signal", "exit", "error")


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What per-file work produced: metadata, or an error and why (timeout, signal, exit, error)."""

    meta: dict[str, Any] | None = None
    error: str | None = None
    reason: str | None = None

    @staticmethod
    def failed(reason: str, error: str) -> FileOutcome:
        return FileOutcome(None, error, reason)


def describe(exc: BaseException) -> str:
    """A processor's exception as the file's error text."""
    if isinstance(exc, MemoryError):
        return "MemoryError: the worker's memory limit (scan.worker_memory_limit) was exceeded"
    return f"{type(exc).__name__}: {exc}"
