"""Reads declared once: each is a frozen value saying what to read, run sync or async by whoever holds a
connection — `store.read(GetJob(7))` on a thread, `await database.aread(GetJob(7))` on the event loop.

A value checks its own arguments when it is made (a bad id is BadRequest before any connection), and
its class name is the operation's name in logs and errors. Adding a read is one declaration here: the
Store seam, the Runtime, its awaitable twin and the database take any Read as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from scanguard.errors import BadRequest
from scanguard.input_checks import check_id
from scanguard.records import (
    ACTIVE_STATUSES,
    STATUSES,
    Event,
    EventQuery,
    Instance,
    Job,
    Library,
    MediaFile,
    Page,
)
from scanguard.store import batches, instances, maintenance, moves, queries, watch, webhooks
from scanguard.store.batches import Existing
from scanguard.store.moves import MoveSource
from scanguard.store.tx import Tx
from scanguard.webhooks.records import Pending, Position, WebhookState

T_co = TypeVar("T_co", covariant=True)
ALL = 1_000_000
"""A listing's limit that means every row (the safeguards' sweeps read whole sets)."""


class Read(Generic[T_co]):
    """Owns nothing: the base of every read; `run` reads in an open read-only transaction."""

    __slots__ = ()
    op: ClassVar[str] = "read"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.op = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()  # GetJob -> get_job

    def run(self, tx: Tx) -> T_co:
        raise NotImplementedError


# ---- libraries ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetLibrary(Read[Library]):
    """One library with its present file count (NotFound when it is gone)."""

    library_id: int

    def __post_init__(self) -> None:
        check_id("library_id", self.library_id)

    def run(self, tx: Tx) -> Library:
        return queries.get_library(tx, self.library_id)


@dataclass(frozen=True, slots=True)
class LibraryForStart(Read[tuple[Library, int | None]]):
    """A library (without its file count) and its active job's id, if any: a start's pre-flight."""

    library_id: int

    def __post_init__(self) -> None:
        check_id("library_id", self.library_id)

    def run(self, tx: Tx) -> tuple[Library, int | None]:
        return queries.library_for_start(tx, self.library_id)


@dataclass(frozen=True, slots=True)
class ListLibraries(Read[tuple[Library, ...]]):
    """Every library, by id."""

    def run(self, tx: Tx) -> tuple[Library, ...]:
        return queries.list_libraries(tx)


@dataclass(frozen=True, slots=True)
class ListFiles(Read[Page[MediaFile]]):
    """A library's present files in path order; `errors`: only those whose per-file work failed."""

    library_id: int
    limit: int = 100
    offset: int = 0
    errors: bool = False

    def __post_init__(self) -> None:
        check_id("library_id", self.library_id)

    def run(self, tx: Tx) -> Page[MediaFile]:
        return queries.list_files(
            tx, self.library_id, limit=self.limit, offset=self.offset, errors=self.errors
        )


# ---- jobs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetJob(Read[Job]):
    """One job (NotFound when it is gone)."""

    job_id: int

    def __post_init__(self) -> None:
        check_id("job_id", self.job_id)

    def run(self, tx: Tx) -> Job:
        return queries.get_job(tx, self.job_id)


@dataclass(frozen=True, slots=True)
class JobWithLibrary(Read[tuple[Job, Library]]):
    """A job and its library in one query: what a control operation routes by."""

    job_id: int

    def __post_init__(self) -> None:
        check_id("job_id", self.job_id)

    def run(self, tx: Tx) -> tuple[Job, Library]:
        return queries.job_with_library(tx, self.job_id)


@dataclass(frozen=True, slots=True)
class ActiveJobOf(Read[tuple[Job, Library] | None]):
    """A library's active job (pending, running or paused) with the library, or None when it has none
    (NotFound when the library is gone), read in one transaction: what the seed's alias routes act on."""

    library_id: int

    def __post_init__(self) -> None:
        check_id("library_id", self.library_id)

    def run(self, tx: Tx) -> tuple[Job, Library] | None:
        _library, active = queries.library_for_start(tx, self.library_id)
        return None if active is None else queries.job_with_library(tx, active)


@dataclass(frozen=True, slots=True)
class ListJobs(Read[Page[Job]]):
    """Jobs, newest first, filtered by status (any of `statuses`; none: all) and library."""

    statuses: tuple[str, ...] = ()
    library_id: int | None = None
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        for status in self.statuses:
            if status not in STATUSES:
                raise BadRequest(
                    f"status must be one of {', '.join(STATUSES)}, got {status!r}", field="status"
                )
        if self.library_id is not None:
            check_id("library_id", self.library_id)

    def run(self, tx: Tx) -> Page[Job]:
        return queries.list_jobs(
            tx, statuses=self.statuses, library_id=self.library_id, limit=self.limit, offset=self.offset
        )


@dataclass(frozen=True, slots=True)
class ActiveJobs(Read[tuple[Job, ...]]):
    """Every job in pending, running or paused."""

    def run(self, tx: Tx) -> tuple[Job, ...]:
        return queries.list_jobs(tx, statuses=ACTIVE_STATUSES, limit=ALL).items


@dataclass(frozen=True, slots=True)
class JobCounts(Read[dict[str, int]]):
    """How many jobs are in each status, and how many libraries there are."""

    def run(self, tx: Tx) -> dict[str, int]:
        return queries.job_counts(tx)


@dataclass(frozen=True, slots=True)
class RunningWithLeases(Read[tuple[tuple[Job, Any], ...]]):
    """Running jobs with their library lease's expiry, for orphan and stall detection."""

    def run(self, tx: Tx) -> tuple[tuple[Job, Any], ...]:
        return queries.running_with_leases(tx)


# ---- a scan's comparison with the database -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class HasFilesAfter(Read[bool]):
    """Whether the library has rows past `after`, in the scope if one is given (a scan that finds none
    reads no range at all)."""

    library_id: int
    after: str | None
    scope: tuple[str, ...] = ()

    def run(self, tx: Tx) -> bool:
        return batches.has_files_after(tx, self.library_id, self.after, self.scope)


@dataclass(frozen=True, slots=True)
class ExistingFiles(Read[dict[str, Existing]]):
    """The rows of one library whose path lies in (after, upto] (and in the scope, if one is given); with
    `work`, their per-file work state."""

    library_id: int
    after: str | None
    upto: str | None
    work: bool = False
    scope: tuple[str, ...] = ()

    def run(self, tx: Tx) -> dict[str, Existing]:
        return batches.existing_files(
            tx, self.library_id, self.after, self.upto, work=self.work, scope=self.scope
        )


@dataclass(frozen=True, slots=True)
class MoveSources(Read[tuple[MoveSource, ...]]):
    """The library's rows with one of these (signed) inodes: what a scan's new paths may be, moved."""

    library_id: int
    inodes: tuple[int, ...]

    def run(self, tx: Tx) -> tuple[MoveSource, ...]:
        return moves.move_sources(tx, self.library_id, self.inodes)


# ---- events, instances, repairs, webhooks ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListEvents(Read[tuple[Event, ...]]):
    """Recorded events, as an EventQuery says."""

    query: EventQuery

    def run(self, tx: Tx) -> tuple[Event, ...]:
        return queries.list_events(tx, self.query)


@dataclass(frozen=True, slots=True)
class ListInstances(Read[tuple[Instance, ...]]):
    """Every instance registered on this database, live or gone, with the jobs each runs."""

    def run(self, tx: Tx) -> tuple[Instance, ...]:
        return instances.list_instances(tx)


@dataclass(frozen=True, slots=True)
class InvariantViolations(Read[dict[str, list[int]]]):
    """What breaks the data model's invariants now (libraries with several active jobs, ...)."""

    def run(self, tx: Tx) -> dict[str, list[int]]:
        return maintenance.invariant_violations(tx)


@dataclass(frozen=True, slots=True)
class WebhookPending(Read[tuple[Pending, ...]]):
    """The next events of these kinds after `position`, in delivery order."""

    position: Position
    kinds: tuple[str, ...]
    limit: int

    def run(self, tx: Tx) -> tuple[Pending, ...]:
        return webhooks.pending_events(tx, self.position, self.kinds, self.limit)


@dataclass(frozen=True, slots=True)
class WebhookStates(Read[tuple[WebhookState, ...]]):
    """Each named webhook's cursor, lease, counters, lag and dead letters."""

    hooks: tuple[tuple[str, tuple[str, ...]], ...]

    def run(self, tx: Tx) -> tuple[WebhookState, ...]:
        return webhooks.states(tx, self.hooks)


@dataclass(frozen=True, slots=True)
class Ping(Read[bool]):
    """The trivial query: the database answers."""

    def run(self, tx: Tx) -> bool:
        return queries.ping(tx)


# ---- watching ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchedLibraries(Read[tuple[Library, ...]]):
    """The libraries whose watch is on, without their counts (the keeper's frequent, cheap read)."""

    def run(self, tx: Tx) -> tuple[Library, ...]:
        return watch.watched_libraries(tx)


@dataclass(frozen=True, slots=True)
class PendingPaths(Read[tuple[tuple[str, ...], datetime]]):
    """Up to `limit` changed paths of a library waiting for its next job, and when the read saw them."""

    library_id: int
    limit: int

    def run(self, tx: Tx) -> tuple[tuple[str, ...], datetime]:
        return watch.pending_paths(tx, self.library_id, self.limit)
