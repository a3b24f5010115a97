"""The plain values the store hands out: libraries, jobs, files, events. Never ORM objects.

Each value is also the API's object: its fields, their bounds (`Annotated[..., Meta(...)]`) and docstring
are what the admin API shows and documents — msgspec encodes these dataclasses and derives their JSON Schema
(scanguard.http.schemas), so an object and its bounds are declared here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args

import msgspec.json
from msgspec import Meta

T = TypeVar("T")

MAX_ID = 2**63 - 1
Id = Annotated[int, Meta(ge=1, le=MAX_ID)]
"""A row id: positive, 64-bit."""
Count = Annotated[int, Meta(ge=0)]
Time = Annotated[datetime, Meta(tz=True)]
"""An instant, shown in ISO 8601 UTC (`2024-05-01T12:00:00Z`)."""

JobStatus = Literal["pending", "running", "paused", "completed", "failed"]
ACTIVE_STATUSES: tuple[JobStatus, ...] = ("pending", "running", "paused")  # at most one per library
FINISHED_STATUSES: tuple[JobStatus, ...] = ("completed", "failed")
STATUSES: tuple[JobStatus, ...] = (*ACTIVE_STATUSES, *FINISHED_STATUSES)
LibraryKind = Literal["mixed", "music", "movies", "shows", "photos"]
LIBRARY_KINDS: tuple[LibraryKind, ...] = get_args(LibraryKind)
MediaType = Literal["audio", "video", "image"]
Trigger = Literal["user", "watch", "poll", "catch_up", "rescan"]
TRIGGERS: tuple[Trigger, ...] = get_args(Trigger)
"""What started a job: an operator or host call, the watcher, its polling fallback, its catch-up after
(re)starting, or its periodic backstop rescan."""


class Record:
    """The JSON side every record shares: one conversion, derived from its fields."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The object as the API shows it: every field, times in ISO 8601 UTC, tuples as lists."""
        shown: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(self))
        return shown


WatchState = Literal["watching", "polling", "unavailable", "off", "starting"]
WATCH_STATES: tuple[WatchState, ...] = get_args(WatchState)


@dataclass(frozen=True, slots=True)
class LibraryWatch(Record):
    """A library's watching: switched on or not, its watcher's state and why, since when, paths waiting."""

    enabled: Annotated[bool, Meta(description="Whether the library follows its folders by itself.")] = False
    state: Annotated[
        WatchState,
        Meta(
            description="watching (inotify), polling (scanned every poll_interval: network filesystem or no "
            "watches left), unavailable (the root is gone or unmounted), off (switched off, or no running "
            "instance watches it), starting."
        ),
    ] = "off"
    reason: Annotated[
        str | None,
        Meta(
            description="Why it is not simply watching: watch_limit, network_filesystem, overflow, "
            "root_unavailable, crashed, not_watched."
        ),
    ] = None
    message: str | None = None
    since: Time | None = None
    pending: Annotated[Count, Meta(description="Changed paths waiting for the next scoped job.")] = 0


@dataclass(frozen=True, slots=True)
class Library(Record):
    """One media library: a folder scanguard scans."""

    id: Id
    path: str
    name: str
    kind: LibraryKind
    created_at: Time
    media_files: Count = 0
    watch: LibraryWatch = field(default_factory=LibraryWatch)


@dataclass(frozen=True, slots=True)
class Job(Record):
    """One scan job: its state, counters, rate and checkpoint."""

    id: Id
    library_id: Id
    status: JobStatus
    files_found: Count
    files_processed: Count
    files_skipped: Count
    files_removed: Count
    files_changed: Count
    bytes_processed: Count
    errors: Count
    total_estimate: Count | None
    progress: Annotated[float, Meta(ge=0, le=100, description="Percent done, to two decimals.")]
    checkpoint: str | None
    skip_reasons: dict[str, int]
    heartbeat_at: Time | None
    owner: str | None
    fencing_token: Count
    restarts: Count
    last_error: str | None
    pause_reason: str | None
    active_seconds: Annotated[float, Meta(ge=0)]
    created_at: Time
    started_at: Time | None
    updated_at: Time
    finished_at: Time | None
    retry_failed: bool = False
    scope: Annotated[
        tuple[str, ...], Meta(description="Normalized relative paths; empty: the whole library.")
    ] = ()
    trigger: Trigger = "user"
    files_moved: Count = 0
    files_per_second: Annotated[float, Meta(ge=0)] = field(init=False)
    eta_seconds: Annotated[float, Meta(ge=0)] | None = field(init=False)

    def __post_init__(self) -> None:
        # derived once from the counters, so that every reader (and the JSON) sees the same figures
        rate = round(self.files_processed / self.active_seconds, 1) if self.active_seconds > 0 else 0.0
        eta = None
        if self.status == "running" and self.total_estimate and rate > 0:
            eta = round(max(self.total_estimate - self.files_processed, 0) / rate, 1)
        object.__setattr__(self, "progress", round(self.progress, 2))
        object.__setattr__(self, "files_per_second", rate)
        object.__setattr__(self, "eta_seconds", eta)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True, slots=True)
class MediaFile(Record):
    """One media file of a library."""

    id: Id
    library_id: Id
    scan_job_id: Id | None
    path: str
    size: Count
    mtime: float
    media_type: MediaType
    quick_hash: str | None
    first_seen_at: Time
    last_seen_at: Time
    missing_since: Time | None
    error: str | None
    meta: dict[str, Any] | None = None


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
class Event(Record):
    """One recorded decision or state change."""

    id: Id
    at: Time
    kind: str
    library_id: Id | None
    job_id: Id | None
    instance: str | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeletedJob(Record):
    """What a hard delete of a job removed."""

    deleted_job_id: Id
    library_id: Id
    media_files_removed: Count


@dataclass(frozen=True, slots=True)
class RemovedLibrary(Record):
    """What removing a library removed."""

    deleted_library_id: Id
    jobs_removed: Count
    media_files_removed: Count

    @property
    def library_id(self) -> int:
        return self.deleted_library_id


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing."""

    items: tuple[T, ...]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class Instance(Record):
    """One process serving this database: its row in `instances`, and the jobs it runs now."""

    id: str
    host: str
    pid: Count
    version: str
    started_at: Time
    heartbeat_at: Time
    live: Annotated[bool, Meta(description="False once its heartbeat is older than the lease.")]
    jobs: tuple[Id, ...] = ()


class JsonText(str):
    """Owns nothing but its text: a value already encoded as JSON (a worker encoded a file's meta), which
    the engines' serializer (store/jsontext.py) writes as it is."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class FileRow:
    """One new or changed media file to upsert."""

    path: str
    size: int
    mtime: float
    media_type: str
    quick_hash: str | None = None
    error: str | None = None
    meta: dict[str, Any] | JsonText | None = None  # JsonText: encoded by a worker, written as it is
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
