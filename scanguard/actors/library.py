"""The LibraryActor: one per library; its mailbox serializes start, pause, resume, delete and removal."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from scanguard.actors.supervisor import Launch, Stop
from scanguard.errors import LibraryRootUnavailable, NotFound
from scanguard.records import DeletedJob, Job, RemovedLibrary

log = structlog.get_logger("scanguard.library")


@dataclass(frozen=True, slots=True)
class StartScan:
    """Start a scan of this library."""


@dataclass(frozen=True, slots=True)
class PauseScan:
    """Pause a running job of this library, with a reason (user, shutdown, stalled, orphaned, ...)."""

    job_id: int
    reason: str = "user"


@dataclass(frozen=True, slots=True)
class ResumeScan:
    """Resume a paused job of this library from its checkpoint."""

    job_id: int


@dataclass(frozen=True, slots=True)
class DeleteJob:
    """Stop a job if it runs and remove it and the files it discovered."""

    job_id: int


@dataclass(frozen=True, slots=True)
class RemoveLibrary:
    """Stop this library's scan and remove the library, its jobs and its files."""


class LibraryActor(pykka.ThreadingActor):
    """Owns the operations of one library: its mailbox is the in-process lock."""

    def __init__(self, library_id: int, store: Any, supervisor: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self.library_id = library_id
        self.store = store
        self.supervisor = supervisor

    def on_receive(self, message: Any) -> Any:
        match message:
            case StartScan():
                return self._start_scan()
            case PauseScan(job_id, reason):
                return self._pause(job_id, reason)
            case ResumeScan(job_id):
                return self._resume(job_id)
            case DeleteJob(job_id):
                return self._delete(job_id)
            case RemoveLibrary():
                return self._remove()
        return super().on_receive(message)

    def _own_job(self, job_id: int) -> Job:
        job: Job = self.store.get_job(job_id).get()
        if job.library_id != self.library_id:
            raise NotFound("job", job_id)
        return job

    def _start_scan(self) -> Job:
        library = self.store.get_library(self.library_id).get()
        if not os.path.isdir(library.path):
            raise LibraryRootUnavailable(library.id, library.path, "missing or not a directory")
        job: Job = self.store.create_job(self.library_id).get()
        self.supervisor.ask(Launch(job, library))
        return job

    def _pause(self, job_id: int, reason: str) -> Job:
        self._own_job(job_id)
        # the database first: from this commit on, the scan's batches are fenced out
        job: Job = self.store.pause_job(job_id, reason).get()
        self.supervisor.ask(Stop(job_id))
        return job

    def _resume(self, job_id: int) -> Job:
        self._own_job(job_id)
        library = self.store.get_library(self.library_id).get()
        if not os.path.isdir(library.path):
            raise LibraryRootUnavailable(library.id, library.path, "missing or not a directory")
        job: Job = self.store.resume_job(job_id).get()
        self.supervisor.ask(Launch(job, library))
        return job

    def _delete(self, job_id: int) -> DeletedJob:
        self._own_job(job_id)
        deleted: DeletedJob = self.store.delete_job(job_id).get()
        self.supervisor.ask(Stop(job_id))
        return deleted

    def _remove(self) -> RemovedLibrary:
        active = self.store.list_jobs(("pending", "running", "paused"), self.library_id).get()
        removed: RemovedLibrary = self.store.remove_library(self.library_id).get()
        for job in active.items:
            self.supervisor.ask(Stop(job.id))
        return removed
