"""Control operations (start, pause, resume, delete) as their pre-flight read leaves them.

The Runtime and its awaitable twin read the job (or library) first — one read, on the caller's thread or
event loop — to route the operation to its library's mailbox; the same read answers a refusal (a busy
library, a pause of a job that is not running) at once, without a write. The transaction checks the
same under its lock, for whatever changed since the read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scanguard.actors.library import DeleteJob, PauseScan, ResumeScan, StartScan
from scanguard.errors import BadRequest, LibraryBusy, ScanguardError
from scanguard.records import TRIGGERS, Job, Library
from scanguard.scope import normalize_scope
from scanguard.store.jobs import refusal


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


def job_request(op: str, read_at: float, job: Job, library: Library, reason: str = "user") -> Request:
    """Pause, resume or delete `job` as read (from `read_at`) with its library; a pause or resume its
    status forbids is refused here. The library's mailbox checks the request again against its own writes
    since the read, and the transaction checks it under its lock."""
    match op:
        case "pause_scan":
            return Request(op, library.id, PauseScan(job.id, reason, read_at), refusal(job, "pause"))
        case "resume_scan":
            return Request(op, library.id, ResumeScan(job.id, library, read_at), refusal(job, "resume"))
    return Request(op, library.id, DeleteJob(job.id, read_at))
