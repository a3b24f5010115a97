"""A start whose launch finds the supervisor gone pauses the job `launch_failed` and answers 503."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pykka
import pytest

import scanguard
from scanguard.actors.library import LibraryActor
from scanguard.control import StartScan
from scanguard.records import Job, Library, Page

pytestmark = pytest.mark.timeout(30)
NOW = datetime(2026, 11, 30, tzinfo=UTC)


class _Store:
    """Just what a start touches: the job it creates, and the pause that undoes it."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.paused: list[tuple[int, str]] = []

    def create_job(
        self, library_id: int, retry_failed: bool = False, scope: tuple[str, ...] = (), trigger: str = "user"
    ) -> Job:
        return self.job

    def pause_job(self, job_id: int, reason: str, **_: Any) -> Job:
        self.paused.append((job_id, reason))
        return self.job

    def list_jobs(self, statuses: Any, library_id: int) -> Page[Job]:
        return Page((), 0, 0, 0)


class _Supervisor(pykka.ThreadingActor):
    pass


def _job() -> Job:
    return Job(
        1, 1, "running", 0, 0, 0, 0, 0, 0, 0, None, 0.0, None, {}, NOW, "me", 1, 0, None, None, 0.0,
        NOW, NOW, NOW, None,
    )  # fmt: skip


def test_a_start_whose_supervisor_is_gone_answers_503_and_pauses_the_job(tmp_path: Path) -> None:
    store = _Store(_job())
    supervisor = _Supervisor.start()
    supervisor.stop()
    library = LibraryActor.start(1, scanguard.load_config(environ={}), "me", store, supervisor)  # type: ignore[arg-type]
    try:
        with pytest.raises(scanguard.RuntimeStopped) as refused:
            library.ask(StartScan(library=Library(1, str(tmp_path), "lib", "mixed", NOW)), timeout=10)
    finally:
        library.stop()
    assert refused.value.status == 503
    assert store.paused == [(1, "launch_failed")], "the started job is paused, as every failed launch is"
