"""The LibraryActor: one per library; its mailbox serializes start, pause, resume, delete and removal."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pykka
import structlog

from scanguard.actors.liveness import Answering
from scanguard.actors.supervisor import Launch, LiveDetail, Stop, Supervised
from scanguard.config import Config
from scanguard.control import DeleteJob, PauseScan, RemoveLibrary, ResumeScan, StartScan
from scanguard.errors import (
    Conflict,
    LibraryBusy,
    LibraryRootUnavailable,
    NotFound,
    OperationFailed,
    RuntimeStopped,
    ScanguardError,
    StoreUnavailable,
)
from scanguard.records import ACTIVE_STATUSES, DeletedJob, Job, Library, RemovedLibrary
from scanguard.store.job_transitions import refusal
from scanguard.store.reads import GetJob, GetLibrary, ListJobs
from scanguard.store.seam import Store

log = structlog.get_logger("scanguard.library")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Make memory and database agree for this library; the reply lists the fixes (validator, post-checks)."""

    source: str = "validator"


@dataclass(frozen=True, slots=True)
class _PostValidate:
    """Reconcile after a successful operation, in the mailbox turn after it (off the caller's path)."""

    op: str


@dataclass(frozen=True, slots=True)
class AdoptOrphan:
    """A running job nobody live owns: pause it as orphaned, or resume it here (auto_resume_orphans)."""

    job_id: int
    detected_by: str


@dataclass(frozen=True, slots=True)
class Fix:
    """One mismatch found and fixed."""

    job_id: int
    direction: str  # "db_running_no_actor" or "actor_not_running_in_db"
    action: str


class LibraryActor(Answering):
    """Owns the operations of one library: its mailbox is the in-process lock."""

    def __init__(
        self, library_id: int, config: Config, instance: str, store: Store, supervisor: pykka.ActorRef[Any]
    ) -> None:
        super().__init__()
        self.library_id = library_id
        self.config = config
        self.instance = instance
        self.store = store
        self.supervisor = supervisor
        self._library: Library | None = None
        # what this mailbox last wrote of each job, and when: {job_id: (monotonic time, job, or None once
        # deleted)}. A request whose pre-flight read is older than such a write is checked against it.
        self._wrote: dict[int, tuple[float, Job | None]] = {}

    def on_receive(self, message: Any) -> Any:
        match message:
            case StartScan(retry_failed, library, read_at, scope, trigger):
                self._know(library)
                self._still_free(read_at)
                return self._safeguarded("start_scan", lambda: self._start_scan(retry_failed, scope, trigger))
            case PauseScan(job_id, reason, read_at):
                self._still_allowed(job_id, "pause", read_at)
                return self._safeguarded("pause_scan", lambda: self._pause(job_id, reason))
            case ResumeScan(job_id, library, read_at):
                self._know(library)
                self._still_allowed(job_id, "resume", read_at)
                return self._safeguarded("resume_scan", lambda: self._resume(job_id))
            case DeleteJob(job_id, read_at):
                self._still_allowed(job_id, "delete", read_at)
                return self._safeguarded("delete_job", lambda: self._delete(job_id))
            case RemoveLibrary():
                return self._safeguarded("remove_library", self._remove)
            case Reconcile(source):
                return self._reconcile(source)
            case _PostValidate(op):
                self._post_validate(op)
                return None
            case AdoptOrphan(job_id, detected_by):
                job = self._own_job("adopt_orphan", job_id)
                if job.status != "running":
                    return Fix(job_id, "db_running_no_actor", "left")
                return self._adopt_orphan(job, detected_by)
        return super().on_receive(message)

    # ---- the seed's flow: pre-flight → transaction → post-validation ----------------------------

    def _know(self, library: Library | None) -> None:
        if library is not None and library.id == self.library_id:
            self._library = library

    # ---- pre-flight, in the lock: the caller's read against this mailbox's own later writes ------------

    def _wrote_job(self, job_id: int, job: Job | None) -> None:
        now = time.monotonic()
        self._wrote[job_id] = (now, job)
        horizon = now - 2 * self.config.safeguards.operation_timeout  # no request waits longer than that
        for stale in [k for k, (at, _) in self._wrote.items() if at < horizon]:
            del self._wrote[stale]

    def _since(self, read_at: float | None) -> dict[int, Job | None]:
        """The jobs this mailbox wrote after the caller's read began (its read may not show them)."""
        if read_at is None:
            return {}
        return {job_id: job for job_id, (at, job) in self._wrote.items() if at > read_at}

    def _still_free(self, read_at: float | None) -> None:
        """A start whose read found the library free, refused if a start or resume here took it since:
        the request is answered as of that write, a moment within its own lifetime (so linearizable)."""
        for job in self._since(read_at).values():
            if job is not None and job.active:
                raise LibraryBusy(self.library_id, job.id)

    def _still_allowed(self, job_id: int, action: str, read_at: float | None) -> None:
        """A pause, resume or delete whose read is older than this mailbox's last write of the job is
        checked against that write instead: a second click on pause is refused here, without a write."""
        since = self._since(read_at)
        if job_id not in since:
            return
        job = since[job_id]
        if job is None:
            raise NotFound("job", job_id)
        if action != "delete" and (refused := refusal(job, action)) is not None:
            raise refused

    def _safeguarded(self, op: str, body: Callable[[], R]) -> R:
        """Run one operation; whatever happens, memory and database agree for this library afterwards.

        A failure is reconciled before the caller hears of it; after a success the post-validation runs
        in this mailbox's next turn — still before any other operation on this library, but off the
        caller's critical path (one read and one ask to the supervisor saved per operation)."""
        try:
            result = body()
        except ScanguardError as exc:
            # a refusal (not found, busy, illegal) changed nothing: the seed returns it at once;
            # a failure inside the operation may have left memory and database apart: reconcile
            if exc.status >= 500:
                self._post_validate(op)
            raise
        except BaseException:
            self._post_validate(op)
            raise
        self.actor_ref.tell(_PostValidate(op))
        return result

    def _post_validate(self, op: str) -> None:
        """A failed post-validation is logged and recorded as an event; it never fails the operation."""
        try:
            fixes = self._reconcile(f"post:{op}")
        except (ScanguardError, pykka.Timeout, pykka.ActorDeadError) as exc:
            log.warning(
                "validation.post_operation_failed", library_id=self.library_id, operation=op, error=str(exc)
            )
            return
        if fixes:
            log.warning(
                "validation.post_operation_fixed",
                library_id=self.library_id,
                operation=op,
                fixes=[f.direction for f in fixes],
            )

    def _step(self, op: str, step: str, fn: Callable[[], R]) -> R:
        """Name the step that failed: typed errors pass through, anything else becomes OperationFailed."""
        try:
            return fn()
        except ScanguardError:
            raise
        except (pykka.Timeout, pykka.ActorDeadError) as exc:
            raise OperationFailed(op, step, exc) from exc

    def _root(self, op: str) -> Library:
        """Pre-flight: the library exists (its path never changes, so it is read once) and its root is there."""
        if self._library is None:
            self._library = self._step(op, "preflight", lambda: self.store.read(GetLibrary(self.library_id)))
        if not os.path.isdir(self._library.path):
            raise LibraryRootUnavailable(self.library_id, self._library.path, "missing or not a directory")
        return self._library

    def _own_job(self, op: str, job_id: int) -> Job:
        job: Job = self._step(op, "preflight", lambda: self.store.read(GetJob(job_id)))
        if job.library_id != self.library_id:
            raise NotFound("job", job_id)
        return job

    def _launch(self, op: str, job: Job, library: Library) -> None:
        """Hand a running job to the supervisor (told, not asked: its mailbox keeps the order of launches
        and stops); if it is gone, undo the start (pause it) and say so."""
        try:
            self.supervisor.tell(Launch(job, library))
        except pykka.ActorDeadError as exc:
            try:
                self._wrote_job(job.id, self.store.pause_job(job.id, "launch_failed", error=str(exc)))
            except ScanguardError as undo:
                log.error("library.launch_undo_failed", job_id=job.id, error=str(undo))
            raise RuntimeStopped(f"{op}: the supervisor is stopped; the job is paused launch_failed") from exc

    def _start_scan(self, retry_failed: bool, scope: tuple[str, ...], trigger: str) -> Job:
        library = self._root("start_scan")
        job: Job = self._step(
            "start_scan",
            "transaction",
            lambda: self.store.create_job(self.library_id, retry_failed, scope, trigger),
        )
        self._wrote_job(job.id, job)
        self._launch("start_scan", job, library)
        return job

    def _pause(self, job_id: int, reason: str) -> Job:
        # the database first: from this commit on, the scan's batches are fenced out
        job: Job = self._step(
            "pause_scan",
            "transaction",
            lambda: self.store.pause_job(job_id, reason, library_id=self.library_id),
        )
        self._wrote_job(job_id, job)
        self.supervisor.tell(Stop(job_id))
        return job

    def _resume(self, job_id: int) -> Job:
        library = self._root("resume_scan")
        job: Job = self._step(
            "resume_scan", "transaction", lambda: self.store.resume_job(job_id, self.library_id)
        )
        self._wrote_job(job_id, job)
        self._launch("resume_scan", job, library)
        return job

    def _delete(self, job_id: int) -> DeletedJob:
        deleted: DeletedJob = self._step(
            "delete_job", "transaction", lambda: self.store.delete_job(job_id, self.library_id)
        )
        self._wrote_job(job_id, None)
        self.supervisor.tell(Stop(job_id))
        return deleted

    def _remove(self) -> RemovedLibrary:
        active = self.store.read(ListJobs(ACTIVE_STATUSES, self.library_id))
        removed: RemovedLibrary = self._step(
            "remove_library", "transaction", lambda: self.store.remove_library(self.library_id)
        )
        for job in active.items:
            self._wrote_job(job.id, None)
        for job in active.items:
            self.supervisor.tell(Stop(job.id))
        return removed

    # ---- memory vs database ---------------------------------------------------------------------

    def _reconcile(self, source: str) -> list[Fix]:
        """Both directions, for this library only, inside its mailbox turn (so no operation races it)."""
        supervised: Supervised = self.supervisor.ask(
            LiveDetail(), block=True, timeout=self.config.safeguards.operation_timeout
        )
        try:
            jobs = self.store.read(ListJobs(("running",), self.library_id)).items
        except NotFound:
            jobs = ()
        mismatch = supervised.against(jobs, self.instance)
        fixes: list[Fix] = []
        for job_id, library_id in mismatch.strays.items():
            if library_id == self.library_id:
                self.supervisor.tell(Stop(job_id))
                fixes.append(Fix(job_id, "actor_not_running_in_db", "stopped"))
        for job in mismatch.orphans:
            fixes.append(self._adopt_orphan(job, source))
        for fix in (f for f in fixes if f.direction == "actor_not_running_in_db"):
            try:
                self.store.record_event(
                    "validator.fixed",
                    self.library_id,
                    fix.job_id,
                    direction=fix.direction,
                    action=fix.action,
                    source=source,
                )
            except StoreUnavailable as exc:
                log.warning("validator.record_failed", job_id=fix.job_id, error=str(exc))
        return fixes

    def _adopt_orphan(self, job: Job, detected_by: str) -> Fix:
        """The one way an orphan is handled: paused as orphaned, then resumed here if auto_resume_orphans."""
        try:
            self._wrote_job(job.id, self.store.pause_job(job.id, "orphaned"))
        except Conflict:
            return Fix(job.id, "db_running_no_actor", "left")  # it moved on meanwhile
        action = "paused"
        if self.config.safeguards.auto_resume_orphans:
            try:
                library = self._root("adopt_orphan")
                resumed: Job = self.store.resume_job(job.id)
                self._wrote_job(job.id, resumed)
                self._launch("adopt_orphan", resumed, library)
                action = "resumed"
            except ScanguardError as exc:
                log.warning("orphan.resume_failed", job_id=job.id, error=str(exc))
        self.store.record_event(
            "orphan.adopted",
            self.library_id,
            job.id,
            detected_by=detected_by,
            action=action,
            previous_owner=job.owner,
            checkpoint=job.checkpoint,
        )
        return Fix(job.id, "db_running_no_actor", action)
