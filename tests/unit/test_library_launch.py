"""A start whose launch meets an unavailable database answers store_unavailable (503), not a 500."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pykka
import pytest

import scanguard
from scanguard.actors.library import LibraryActor, StartScan
from scanguard.actors.supervisor import LiveDetail, Supervised
from scanguard.records import Job, Library, Page

pytestmark = pytest.mark.timeout(30)
NOW = datetime(2026, 11, 30, tzinfo=UTC)


class _Done:
    """A value (or an error) the way a pykka future hands it out."""

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value, self.error = value, error

    def get(self, timeout: float | None = None) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class _Store:
    """The library's path reads fine; the database is gone by the time the launch reads it again."""

    def __init__(self, library: Library, job: Job) -> None:
        self.library, self.job = library, job
        self.library_reads = 0
        self.paused: list[tuple[int, str]] = []

    def get_library(self, library_id: int) -> _Done:
        self.library_reads += 1
        if self.library_reads == 1:
            return _Done(self.library)
        return _Done(
            error=scanguard.StoreUnavailable("get_library: the database is unavailable at step 'read'")
        )

    def create_job(self, library_id: int, retry_failed: bool = False) -> _Done:
        return _Done(self.job)

    def pause_job(self, job_id: int, reason: str, **_: Any) -> _Done:
        self.paused.append((job_id, reason))
        return _Done(self.job)

    def list_jobs(self, statuses: Any, library_id: int) -> _Done:
        return _Done(Page((), 0, 0, 0))


class _Supervisor(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, LiveDetail):
            return Supervised({}, frozenset())
        return None


@pytest.fixture
def supervisor() -> Iterator[pykka.ActorRef[Any]]:
    ref = _Supervisor.start()
    yield ref
    ref.stop()


def _job() -> Job:
    return Job(
        1, 1, "running", 0, 0, 0, 0, 0, 0, 0, None, 0.0, None, {}, NOW, "me", 1, 0, None, None, 0.0,
        NOW, NOW, NOW, None,
    )  # fmt: skip


def test_a_start_whose_launch_loses_the_database_answers_503_and_pauses_the_job(
    tmp_path: Path, supervisor: pykka.ActorRef[Any]
) -> None:
    store = _Store(Library(1, str(tmp_path), "lib", "mixed", NOW), _job())
    library = LibraryActor.start(1, scanguard.load_config(environ={}), "me", store, supervisor)
    try:
        with pytest.raises(scanguard.StoreUnavailable) as refused:
            library.ask(StartScan(), timeout=10)
    finally:
        library.stop()
    assert refused.value.status == 503
    assert refused.value.details == {"operation": "start_scan", "step": "launch"}
    assert store.paused == [(1, "launch_failed")], "the started job is paused, as every failed launch is"
