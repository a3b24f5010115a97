"""Control operations (start, pause, resume, delete, remove a library): the messages a library's mailbox takes
for them, and each as its pre-flight read leaves them.

The Runtime and its awaitable twin read the job (or library) first — one read, on the caller's thread or
event loop — to route the operation to its library's mailbox; the same read answers a refusal (a busy
library, a pause of a job that is not running) at once, without a write. The transaction checks the
same under its lock, for whatever changed since the read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Never

from scanguard.errors import BadRequest, LibraryBusy, ScanguardError, UnknownOperation
from scanguard.records import TRIGGERS, Job, Library
from scanguard.scope import normalize_scope
from scanguard.store.job_transitions import refusal

JobOperation = Literal["pause_scan", "resume_scan", "delete_job"]
"""The control operations on one job."""


@dataclass(frozen=True, slots=True)
class StartScan:
    """Start a scan of this library; `retry_failed` also re-processes unchanged files whose work failed.
    `library` is the library as the caller just read it (so the actor need not read it again); `scope`
    the normalized paths to walk (`()`: all of it), `trigger` what asked for it."""

    retry_failed: bool = False
    library: Library | None = None
    read_at: float | None = None  # time.monotonic() before the caller's pre-flight read
    scope: tuple[str, ...] = ()
    trigger: str = "user"


@dataclass(frozen=True, slots=True)
class PauseScan:
    """Pause a running job of this library, with a reason (user, shutdown, stalled, orphaned, ...)."""

    job_id: int
    reason: str = "user"
    read_at: float | None = None


@dataclass(frozen=True, slots=True)
class ResumeScan:
    """Resume a paused job of this library from its checkpoint (`library` as in StartScan)."""

    job_id: int
    library: Library | None = None
    read_at: float | None = None


@dataclass(frozen=True, slots=True)
class DeleteJob:
    """Stop a job if it runs and remove it and the files it discovered."""

    job_id: int
    read_at: float | None = None


@dataclass(frozen=True, slots=True)
class RemoveLibrary:
    """Stop this library's scan and remove the library, its jobs and its files."""


@dataclass(frozen=True, slots=True)
class Request:
    """A control operation as its pre-flight read left it: the message for its library's mailbox, or the
    refusal that answers it at once."""

    op: str
    library_id: int
    message: Any
    refused: ScanguardError | None = None


def start_request(
    read_at: float,
    library: Library,
    busy: int | None,
    retry_failed: bool,
    paths: Iterable[object] | None = None,
    trigger: str = "user",
) -> Request:
    """Start a scan of `library` (of `paths` inside it, if given), read (from `read_at`,
    time.monotonic()) with its active job `busy`: a LibraryBusy refusal if there is one.

    A scope escaping the root or an unknown trigger raises here, before anything is asked or written."""
    if trigger not in TRIGGERS:
        raise BadRequest(f"trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}", field="trigger")
    scope = normalize_scope(paths, library.path)
    refused = None if busy is None else LibraryBusy(library.id, busy)
    message = StartScan(bool(retry_failed), library, read_at, scope, trigger)
    return Request("start_scan", library.id, message, refused)


def job_request(
    op: JobOperation, read_at: float, job: Job, library: Library, reason: str = "user"
) -> Request:
    """Pause, resume or delete `job` as read (from `read_at`) with its library; a pause or resume its
    status forbids is refused here. The library's mailbox checks the request again against its own writes
    since the read, and the transaction checks it under its lock. Any other `op` is UnknownOperation."""
    match op:
        case "pause_scan":
            return Request(op, library.id, PauseScan(job.id, reason, read_at), refusal(job, "pause"))
        case "resume_scan":
            return Request(op, library.id, ResumeScan(job.id, library, read_at), refusal(job, "resume"))
        case "delete_job":
            return Request(op, library.id, DeleteJob(job.id, read_at))
        case _:
            raise _unknown(op)


def _unknown(op: Never) -> UnknownOperation:
    """typing.assert_never with a typed error: mypy proves every JobOperation is matched above (only
    Never may be passed here), and a caller that bypasses the types gets UnknownOperation, not a delete."""
    return UnknownOperation(op)
