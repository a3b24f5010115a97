"""The store seam: the one typed interface (a Protocol) through which the Runtime and every actor use the
database. Each call is one transaction, bounded by `operation_timeout`; writes go through the writer's
one ordered mailbox, reads (each declared once in scanguard.store.reads) run read-only on the caller's
thread."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from scanguard.records import DeletedJob, Event, Job, Library, RemovedLibrary
from scanguard.store.batches import BatchCommit
from scanguard.store.maintenance import Removed
from scanguard.store.reads import Read
from scanguard.webhooks.records import Lease, Pending, Position

T_co = TypeVar("T_co", covariant=True)
R = TypeVar("R")

FaultHook = Callable[[str, str], None]
"""Called as hook(operation, stage) with stage 'before_commit' or 'after_commit' of a write; raising
simulates a fault (tests install it through Store.set_fault_hook)."""


class Later(Protocol[T_co]):
    """A write sent ahead (a scan's batch commits while its walk goes on); `result()` waits for it."""

    def result(self, timeout: float | None = None) -> T_co:
        """Wait for the write (within `timeout`, else the operation timeout) and return its result or raise
        its error."""
        ...

    def done(self, timeout: float) -> bool:
        """Whether the write has finished, waiting at most `timeout` seconds for it."""
        ...


class Store(Protocol):
    """Every database operation of scanguard, typed; a store error arrives as a ScanguardError."""

    # ---- reads (read-only transactions, never behind the writer's queue) ----------------------

    def read(self, query: Read[R]) -> R:
        """Run one declared read (scanguard.store.reads) on the calling thread."""
        ...

    # ---- writes (one ordered mailbox) ---------------------------------------------------------

    def ping(self, timeout: float | None = None) -> float:
        """Round-trip a trivial query through the writer's mailbox (within `timeout`, else the operation
        timeout); its latency in seconds."""
        ...

    def add_library(self, path: str, name: str, kind: str, watch: bool = True) -> Library: ...

    def set_library_watch(self, library_id: int, enabled: bool) -> Library: ...

    # ---- watching (DESIGN §12) -----------------------------------------------------------------

    def claim_watch(self, library_id: int, ttl: float) -> bool:
        """Hold or renew this instance's watch lease on the library; False while another holds it."""
        ...

    def release_watch(self, library_id: int) -> None: ...

    def set_watch_state(
        self,
        library_id: int,
        state: str,
        reason: str | None,
        message: str | None,
        event: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> bool:
        """The watcher's state, with its event (watch.degraded, watch.recovered), while it holds the lease."""
        ...

    def add_pending(self, library_id: int, paths: tuple[str, ...]) -> int: ...

    def take_pending(self, library_id: int, paths: tuple[str, ...] | None, upto: datetime) -> int: ...

    def remove_library(self, library_id: int) -> RemovedLibrary: ...

    def create_job(
        self,
        library_id: int,
        retry_failed: bool = False,
        scope: tuple[str, ...] = (),
        trigger: str = "user",
    ) -> Job:
        """A running job over a normalized scope (`()`: the whole library), started by `trigger`."""
        ...

    def commit_batch(self, batch: BatchCommit) -> Later[Job]:
        """Send a scan's batch to the writer; the scan walks on and confirms it before its next one."""
        ...

    def finish_job(self, job_id: int, library_id: int, token: int, root_empty: bool = False) -> Job:
        """Complete a walked job; `root_empty` (the root lists nothing) pauses it instead of marking any
        vanished file missing."""
        ...

    def pause_job(
        self,
        job_id: int,
        reason: str,
        error: str | None = None,
        token: int | None = None,
        library_id: int | None = None,
    ) -> Job: ...

    def resume_job(self, job_id: int, library_id: int | None = None) -> Job: ...

    def delete_job(self, job_id: int, library_id: int | None = None) -> DeletedJob: ...

    def fail_job(self, job_id: int, error: str, restarts: int) -> Job: ...

    def record_restart(self, job_id: int, error: str, delay: float) -> Job: ...

    def record_event(
        self, kind: str, library_id: int | None = None, job_id: int | None = None, **data: Any
    ) -> Event: ...

    def remove_old_jobs(self, finished_before: datetime, limit: int) -> Removed: ...

    def remove_old_events(self, before: datetime, limit: int) -> Removed: ...

    def remove_orphaned_files(self, limit: int) -> Removed: ...

    def remove_orphaned_jobs(self) -> Removed: ...

    def release_stale_leases(self) -> Removed: ...

    def register_instance(self) -> None: ...

    def beat_instance(self) -> None: ...

    def remove_instance(self) -> None: ...

    def remove_gone_instances(self, before: datetime) -> Removed: ...

    def ensure_webhook(self, name: str) -> None: ...

    def claim_webhook(self, name: str) -> Lease | None: ...

    def release_webhook(self, name: str, token: int) -> None: ...

    def webhook_delivered(self, name: str, token: int, position: Position) -> bool: ...

    def webhook_skipped(self, name: str, token: int, position: Position) -> bool: ...

    def webhook_attempt_failed(self, name: str, token: int, error: str) -> bool: ...

    def webhook_dead(self, pending: Pending, name: str, token: int, attempts: int, error: str) -> bool: ...

    def set_fault_hook(self, hook: FaultHook | None) -> None:
        """Install a fault injector on the writer (tests); None removes it."""
        ...
