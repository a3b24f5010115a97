"""The store seam's ordering rules: the writer's two lanes, and a library mailbox that refuses a request
its own later write has overtaken, without writing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pykka
import pytest

import scanguard
from scanguard.actors.library import LibraryActor
from scanguard.actors.store import Ping, Write, WriterInbox
from scanguard.control import PauseScan, ResumeScan, StartScan
from scanguard.records import Job, Library, Page
from scanguard.store.reads import ListJobs, Read

pytestmark = pytest.mark.timeout(30)
NOW = datetime(2026, 11, 30, tzinfo=UTC)


class _Envelope:
    def __init__(self, message: Any) -> None:
        self.message = message


def _noop(*_: Any) -> None:
    return None


def test_the_writer_serves_control_writes_before_queued_batches_and_keeps_each_lane_in_order() -> None:
    inbox = WriterInbox()
    sent = [
        Write("commit_batch", _noop, bulk=True),
        Ping(),
        Write("pause_job", _noop),
        Write("commit_batch", _noop, bulk=True),
        Write("resume_job", _noop),
    ]
    for message in sent:
        inbox.put(_Envelope(message))  # type: ignore[arg-type]
    order = []
    while not inbox.empty():
        message = inbox.get().message
        order.append(getattr(message, "op", type(message).__name__))
    assert order == ["pause_job", "resume_job", "commit_batch", "Ping", "commit_batch"]


def test_the_writer_inbox_wakes_a_waiting_reader() -> None:
    inbox = WriterInbox()
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(inbox.get().message))
    reader.start()
    inbox.put(_Envelope(Write("pause_job", _noop)))  # type: ignore[arg-type]
    reader.join(5)
    assert not reader.is_alive()
    assert got[0].op == "pause_job"


def _job(status: str, token: int = 1) -> Job:
    return Job(
        7, 1, status, 0, 0, 0, 0, 0, 0, 0, None, 0.0, None, {}, NOW, "me", token, 0, None, None, 0.0,
        NOW, NOW, NOW, None,
    )  # fmt: skip


class _Store:
    """Counts writes; pause and resume succeed from the right status, like the transaction."""

    def __init__(self) -> None:
        self.status = "running"
        self.writes: list[str] = []

    def pause_job(self, job_id: int, reason: str, **_: Any) -> Job:
        self.writes.append("pause_job")
        if self.status != "running":
            raise scanguard.IllegalTransition(job_id, self.status, "pause")
        self.status = "paused"
        return _job("paused")

    def resume_job(self, job_id: int, library_id: int | None = None) -> Job:
        self.writes.append("resume_job")
        if self.status != "paused":
            raise scanguard.IllegalTransition(job_id, self.status, "resume")
        self.status = "running"
        return _job("running", 2)

    def create_job(
        self, library_id: int, retry_failed: bool = False, scope: tuple[str, ...] = (), trigger: str = "user"
    ) -> Job:
        self.writes.append("create_job")
        raise scanguard.LibraryBusy(library_id, 7)

    def read(self, query: Read[Any]) -> Any:
        assert isinstance(query, ListJobs), query  # the post-validation's only read
        return Page((), 0, 0, 0)

    def record_event(self, *_: Any, **__: Any) -> None:
        return None


class _Supervisor(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        from scanguard.actors.supervisor import LiveDetail, Supervised

        if isinstance(message, LiveDetail):
            return Supervised({}, frozenset())
        return None


def test_a_second_click_read_before_the_first_write_is_refused_in_the_mailbox_without_a_write(
    tmp_path: Path,
) -> None:
    store = _Store()
    supervisor = _Supervisor.start()
    library = Library(1, str(tmp_path), "lib", "mixed", NOW)
    actor = LibraryActor.start(1, scanguard.load_config(environ={}), "me", store, supervisor)  # type: ignore[arg-type]
    try:
        read_at = time.monotonic()  # both clicks read the job as running, before either wrote
        first = actor.ask(PauseScan(7, "user", read_at), timeout=10)
        assert first.status == "paused"
        with pytest.raises(scanguard.IllegalTransition):
            actor.ask(PauseScan(7, "user", read_at), timeout=10)
        assert store.writes == ["pause_job"], "the second click never reached the writer"
        with pytest.raises(scanguard.LibraryBusy):  # a start read before the job existed here
            actor.ask(StartScan(False, library, read_at), timeout=10)
        assert store.writes == ["pause_job"]

        later = time.monotonic()  # a read after the write: the transaction decides
        resumed = actor.ask(ResumeScan(7, library, later), timeout=10)
        assert resumed.status == "running"
        assert store.writes == ["pause_job", "resume_job"]
        with pytest.raises(scanguard.IllegalTransition):  # a resume whose read predates that resume
            actor.ask(ResumeScan(7, library, later), timeout=10)
        assert store.writes == ["pause_job", "resume_job"]
        # without a read time (a host's direct message) the transaction is the judge
        with pytest.raises(scanguard.IllegalTransition):
            actor.ask(ResumeScan(7, library), timeout=10)
        assert store.writes == ["pause_job", "resume_job", "resume_job"]
    finally:
        actor.stop()
        supervisor.stop()
