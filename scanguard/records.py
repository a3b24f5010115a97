"""The plain values the store hands out: libraries, jobs, files, events. Never ORM objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")

JobStatus = Literal["pending", "running", "paused", "completed", "failed"]
ACTIVE_STATUSES: tuple[JobStatus, ...] = ("pending", "running", "paused")  # at most one per library
FINISHED_STATUSES: tuple[JobStatus, ...] = ("completed", "failed")
STATUSES: tuple[JobStatus, ...] = (*ACTIVE_STATUSES, *FINISHED_STATUSES)
LIBRARY_KINDS = ("mixed", "music", "movies", "shows", "photos")
Trigger = Literal["user", "watch", "poll", "catch_up", "rescan"]
TRIGGERS: tuple[Trigger, ...] = ("user", "watch", "poll", "catch_up", "rescan")
"""What started a job: an operator or host call, the watcher, its polling fallback, its catch-up after
(re)starting, or its periodic backstop rescan."""


def iso(value: datetime | None) -> str | None:
    """ISO 8601 UTC, as every API object shows times."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


WatchState = Literal["watching", "polling", "unavailable", "off", "starting"]
WATCH_STATES: tuple[WatchState, ...] = ("watching", "polling", "unavailable", "off", "starting")


@dataclass(frozen=True, slots=True)
class LibraryWatch:
    """A library's watching: switched on or not, its watcher's state and why, since when, paths waiting."""

    enabled: bool = False
    state: WatchState = "off"
    reason: str | None = None
    message: str | None = None
    since: datetime | None = None
    pending: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "state": self.state,
            "reason": self.reason,
            "message": self.message,
            "since": iso(self.since),
            "pending": self.pending,
        }


@dataclass(frozen=True, slots=True)
class Library:
    """One media library: a folder scanguard scans."""

    id: int
    path: str
    name: str
    kind: str
    created_at: datetime
    media_files: int = 0
    watch: LibraryWatch = field(default_factory=LibraryWatch)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "name": self.name,
            "kind": self.kind,
            "media_files": self.media_files,
            "created_at": iso(self.created_at),
            "watch": self.watch.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Job:
    """One scan job as the database holds it."""

    id: int
    library_id: int
    status: JobStatus
    files_found: int
    files_processed: int
    files_skipped: int
    files_removed: int
    files_changed: int
    bytes_processed: int
    errors: int
    total_estimate: int | None
    progress: float
    checkpoint: str | None
    skip_reasons: dict[str, int]
    heartbeat_at: datetime | None
    owner: str | None
    fencing_token: int
    restarts: int
    last_error: str | None
    pause_reason: str | None
    active_seconds: float
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    retry_failed: bool = False
    scope: tuple[str, ...] = ()  # normalized relative paths; () = the whole library
    trigger: str = "user"
    files_moved: int = 0

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def files_per_second(self) -> float:
        return round(self.files_processed / self.active_seconds, 1) if self.active_seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if self.status != "running" or not self.total_estimate:
            return None
        rate = self.files_per_second
        if rate <= 0:
            return None
        return round(max(self.total_estimate - self.files_processed, 0) / rate, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "library_id": self.library_id,
            "status": self.status,
            "progress": round(self.progress, 2),
            "files_found": self.files_found,
            "files_processed": self.files_processed,
            "files_skipped": self.files_skipped,
            "files_removed": self.files_removed,
            "bytes_processed": self.bytes_processed,
            "errors": self.errors,
            "total_estimate": self.total_estimate,
            "files_per_second": self.files_per_second,
            "eta_seconds": self.eta_seconds,
            "pause_reason": self.pause_reason,
            "last_error": self.last_error,
            "restarts": self.restarts,
            "owner": self.owner,
            "checkpoint": self.checkpoint,
            "skip_reasons": dict(self.skip_reasons),
            "retry_failed": self.retry_failed,
            "scope": list(self.scope),
            "trigger": self.trigger,
            "files_moved": self.files_moved,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "updated_at": iso(self.updated_at),
            "finished_at": iso(self.finished_at),
        }


@dataclass(frozen=True, slots=True)
class MediaFile:
    """One media file of a library."""

    id: int
    library_id: int
    scan_job_id: int | None
    path: str
    size: int
    mtime: float
    media_type: str
    quick_hash: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    missing_since: datetime | None
    error: str | None
    meta: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "library_id": self.library_id,
            "scan_job_id": self.scan_job_id,
            "path": self.path,
            "size": self.size,
            "mtime": self.mtime,
            "media_type": self.media_type,
            "quick_hash": self.quick_hash,
            "first_seen_at": iso(self.first_seen_at),
            "last_seen_at": iso(self.last_seen_at),
            "missing_since": iso(self.missing_since),
            "error": self.error,
            "meta": self.meta,
        }


EVENT_FAMILIES: dict[str, tuple[str, ...]] = {
    "job": ("job.", "supervisor.", "watchdog.", "orphan.", "validator."),
    "watch": ("watch.",),
    "file": ("file.",),
    "library": ("library.",),
    "system": ("alert.", "emergency.", "cleanup."),
}
"""The kind prefixes of each event family: `job` is a job's life and every decision the safeguards took
about it (restarts, stalls, hand-overs, adopted orphans, validator fixes); `file` the per-file events. Each
prefix is one word and a dot, and no two families share one."""


def kind_matches(kind: str, wanted: str) -> bool:
    """An event kind against one filter: a family prefix when it ends with '.', else the exact kind."""
    return kind.startswith(wanted) if wanted.endswith(".") else kind == wanted


def event_kinds(kind: str | None, family: str | None) -> tuple[str, ...] | None:
    """The kind filters whose union is both `kind` and `family` (a key of EVENT_FAMILIES); None: every kind."""
    if family is None:
        return None if kind is None else (kind,)
    prefixes = EVENT_FAMILIES[family]
    if kind is None:
        return prefixes
    # each prefix is one word and a dot, so no kind filter is broader than a prefix: it lies inside or outside
    return (kind,) if any(kind.startswith(prefix) for prefix in prefixes) else ()


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events to read: by job, library and kinds (any of them; a family when one ends with '.';
    None: every kind), after an id, oldest first unless `newest_first`."""

    job_id: int | None = None
    library_id: int | None = None
    kinds: tuple[str, ...] | None = None
    after_id: int = 0
    limit: int = 100
    newest_first: bool = False

    def matches(self, event: Event) -> bool:
        """Whether a live event passes the filters (the id and the limit aside)."""
        return (
            (self.job_id is None or event.job_id == self.job_id)
            and (self.library_id is None or event.library_id == self.library_id)
            and (self.kinds is None or any(kind_matches(event.kind, k) for k in self.kinds))
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded decision or state change."""

    id: int
    at: datetime
    kind: str
    library_id: int | None
    job_id: int | None
    instance: str | None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso(self.at),
            "kind": self.kind,
            "library_id": self.library_id,
            "job_id": self.job_id,
            "instance": self.instance,
            "data": dict(self.data),
        }


@dataclass(frozen=True, slots=True)
class DeletedJob:
    """What a hard delete of a job removed."""

    deleted_job_id: int
    library_id: int
    media_files_removed: int

    def to_dict(self) -> dict[str, Any]:
        return {"deleted_job_id": self.deleted_job_id, "media_files_removed": self.media_files_removed}


@dataclass(frozen=True, slots=True)
class RemovedLibrary:
    """What removing a library removed."""

    library_id: int
    jobs_removed: int
    media_files_removed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "deleted_library_id": self.library_id,
            "jobs_removed": self.jobs_removed,
            "media_files_removed": self.media_files_removed,
        }


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing."""

    items: tuple[T, ...]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class Instance:
    """One process serving this database: its row in `instances`, and the jobs it runs now."""

    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    live: bool
    jobs: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "started_at": iso(self.started_at),
            "heartbeat_at": iso(self.heartbeat_at),
            "live": self.live,
            "jobs": list(self.jobs),
        }


@dataclass(frozen=True, slots=True)
class FileRow:
    """One new or changed media file to upsert."""

    path: str
    size: int
    mtime: float
    media_type: str
    quick_hash: str | None = None
    error: str | None = None
    meta: dict[str, Any] | None = None
    device: int | None = None  # signed 64-bit (scanguard.store.moves.signed64)
    inode: int | None = None


@dataclass(frozen=True, slots=True)
class Moved:
    """A row moved from `from_path` to `path`: its id, meta and history stay; its stat is the file's now."""

    id: int
    from_path: str
    path: str
    size: int
    mtime: float
    device: int
    inode: int


@dataclass(frozen=True, slots=True)
class Identity:
    """The device and inode of an unchanged row that had none (rows from before migration 0005)."""

    id: int
    device: int
    inode: int
