"""Issue 3, items 2 and 7: a scan hung in a filesystem call is paused as stalled, abandoned, and writes nothing."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import scanguard
from scanguard import FileContext
from tests.integration.safeguards_support import (
    QUIET_SAFEGUARDS,
    HangingFileSystem,
    assert_database_valid,
    count,
    indexed_paths,
    job_events,
    job_row,
    release_hung_walks,  # noqa: F401 - a fixture, used through pytestmark
)
from tests.support.db import install_write_counter, media_writes
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("release_hung_walks")]

STALL = 1.0
TICK = 0.2
FORCE_KILL = 1.0
SLACK = 5.0  # a loaded 2-core box


def test_a_scan_hung_in_scandir_is_paused_as_stalled_abandoned_and_its_late_batch_commits_nothing(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """Stalled within threshold + one tick; abandoned after force_kill_timeout; resumed to the exact set."""
    root = tmp_path / "library"
    media_tree.build_tree(root, 60, n_other=6)
    expected = sorted(media_tree.expected_media(root))
    fs = HangingFileSystem(hang_on=[str(root / "Artist 000" / "Album 03")])
    cfg = make_config(
        safeguards={
            **QUIET_SAFEGUARDS,
            "stall_threshold": STALL,
            "watchdog_interval": TICK,
            "force_kill_timeout": FORCE_KILL,
        },
        scan={"batch_size": 10, "batch_seconds": 5},
    )
    rt = runtime_factory(cfg, fs=fs)
    library = rt.add_library(root)
    install_write_counter(db_url)

    job = rt.start_scan(library.id)
    assert fs.entered.wait(10), "the walk reached the hanging directory"
    hung_at = time.monotonic()

    paused = wait_for(
        lambda: (j := rt.get_job(job.id)).status == "paused" and j,
        STALL + TICK + SLACK,
        "the watchdog to pause the hung scan",
    )
    assert paused.pause_reason == "stalled"
    assert time.monotonic() - hung_at <= STALL + TICK + SLACK
    # the pause is committed, then the supervisor is told to stop the actor: it lets go just after
    wait_for(lambda: job.id not in rt.live_scans(), SLACK, "the supervisor to let go of the stuck actor")

    abandoned = wait_for(
        lambda: [d for k, d in job_events(db_url, job.id) if k == "supervisor.abandoned"],
        FORCE_KILL + SLACK,
        "supervisor.abandoned",
    )
    assert abandoned[0]["after_seconds"] == FORCE_KILL
    at = {e.kind: e.at for e in rt.events(job_id=job.id)}
    waited = (at["supervisor.abandoned"] - at["job.paused"]).total_seconds()
    assert waited >= FORCE_KILL * 0.9, f"abandoned {waited:.2f}s after the pause, before force_kill_timeout"
    assert fs.released.is_set() is False
    assert fs.hung_threads[0].is_alive(), "the stuck thread is still in its system call"

    before = job_row(db_url, job.id)
    files_before = count(db_url, f"SELECT COUNT(*) FROM media_files WHERE library_id = {library.id}")
    writes_before = media_writes(db_url)
    assert 0 < files_before < len(expected), "it hung mid-scan, after committing some batches"

    fs.release_and_join()

    assert job_row(db_url, job.id) == before, "the late walker changed the job row"
    assert count(db_url, f"SELECT COUNT(*) FROM media_files WHERE library_id = {library.id}") == files_before
    assert media_writes(db_url) == writes_before, "the late walker wrote media rows"

    rt.resume_scan(job.id)
    done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=30)
    assert done.status == "completed", done
    assert indexed_paths(db_url, library.id) == expected
    assert done.files_processed == len(expected)

    events = job_events(db_url, job.id)
    decisions = [(k, d.get("reason")) for k, d in events]
    assert decisions[0] == ("job.started", None)
    assert [k for k, _ in decisions] == [
        "job.started",
        "watchdog.stalled",
        "job.paused",
        "supervisor.abandoned",
        "job.resumed",
        "job.completed",
    ], decisions
    assert decisions[2] == ("job.paused", "stalled")
    assert "fenced" in decisions[3][1]
    stalled = events[1][1]
    assert stalled["heartbeat_age"] > STALL
    assert stalled["action"] == "pause"
    assert_database_valid(db_url)


class HangingProcessor:
    """A host processor (a tag reader) that hangs on one file the first time it sees it."""

    def __init__(self, hang_path: str) -> None:
        self.hang_path = hang_path
        self.entered = threading.Event()
        self.released = threading.Event()
        self.thread: threading.Thread | None = None
        self.calls: Counter[str] = Counter()

    def __call__(self, ctx: FileContext) -> dict[str, Any]:
        self.calls[ctx.path] += 1
        if ctx.path == self.hang_path and self.thread is None:
            self.thread = threading.current_thread()
            self.entered.set()
            self.released.wait(60)
        return {"tags": ctx.path}


def test_an_in_process_processor_hung_past_file_timeout_quarantines_its_file_and_the_scan_goes_on(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """Hung in the host's processor longer than the stall threshold: quarantined at file_timeout, never stalled.

    The scan heartbeats while it waits, so the watchdog leaves it alone; the file's deadline quarantines it,
    its thread is abandoned and counted, and when that thread finally returns its result is dropped.
    """
    root = tmp_path / "library"
    media_tree.build_tree(root, 40, n_other=4)
    expected = sorted(media_tree.expected_media(root))
    processor = HangingProcessor(expected[23])
    file_timeout = 3 * STALL
    cfg = make_config(
        safeguards={
            **QUIET_SAFEGUARDS,
            "stall_threshold": STALL,
            "watchdog_interval": TICK,
            "force_kill_timeout": FORCE_KILL,
        },
        scan={"batch_size": 10, "batch_seconds": 5, "file_timeout": file_timeout},
    )
    rt = runtime_factory(cfg, processor=processor)
    library = rt.add_library(root)
    try:
        job = rt.start_scan(library.id)
        assert processor.entered.wait(10)
        done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=file_timeout + 20)
        assert done.status == "completed", done
        assert done.errors == 1
        after = job_row(db_url, job.id)
        install_write_counter(db_url)
        writes = media_writes(db_url)
    finally:
        processor.released.set()
    assert processor.thread is not None
    processor.thread.join(10)
    assert not processor.thread.is_alive()
    rt.store.ping()

    assert job_row(db_url, job.id) == after, "the abandoned thread's late result changed the job"
    assert media_writes(db_url) == writes, "the abandoned thread's late result wrote a media row"
    assert indexed_paths(db_url, library.id) == expected
    assert after["files_processed"] == len(expected)
    failed = rt.list_files(library.id, errors=True).items
    assert [f.path for f in failed] == [expected[23]]
    assert "timeout" in (failed[0].error or "")
    assert failed[0].meta is None
    assert processor.calls[expected[23]] == 1, (
        "an in-process hang is not retried (its thread cannot be killed)"
    )
    assert rt.metrics.processor_threads_abandoned._value.get() == 1
    kinds = [k for k, _ in job_events(db_url, job.id)]
    assert "watchdog.stalled" not in kinds, kinds
    assert "job.paused" not in kinds, kinds
    quarantined = [d for k, d in job_events(db_url, job.id) if k == "file.quarantined"]
    assert [(d["path"], d["reason"]) for d in quarantined] == [(expected[23], "timeout")]
    assert_database_valid(db_url)
