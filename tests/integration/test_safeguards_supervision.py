"""Issue 3, items 1 and 7: the supervisor restarts a crashed scan from its checkpoint, within an intensity limit."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

import scanguard
from scanguard import FatalProcessorError, FileContext
from tests.integration.safeguards_support import (
    QUIET_SAFEGUARDS,
    HangingFileSystem,
    assert_database_valid,
    indexed_paths,
    job_events,
    job_row,
    release_hung_walks,  # noqa: F401 - a fixture, used through pytestmark
    stays_false,
)
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("release_hung_walks")]

BATCH = 10


class CrashingProcessor:
    """A host processor that dies (FatalProcessorError) on one file, the first `times` times it sees it."""

    def __init__(self, crash_path: str, times: int) -> None:
        self.crash_path = crash_path
        self.crashes_left = times
        self.calls: Counter[str] = Counter()
        self.order: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, ctx: FileContext) -> dict[str, Any] | None:
        with self._lock:
            self.calls[ctx.path] += 1
            self.order.append(ctx.path)
            crash = ctx.path == self.crash_path and self.crashes_left != 0
            if crash:
                self.crashes_left -= 1
        if crash:
            raise FatalProcessorError(f"tag reader died on {ctx.path}")
        return {"seen": True}


def _library(tmp_path: Path, media_tree: Any, n: int = 80) -> tuple[Path, list[str]]:
    root = tmp_path / "library"
    media_tree.build_tree(root, n, n_other=12)
    return root, sorted(media_tree.expected_media(root))


@pytest.mark.parametrize("crashes", [1, 3])
def test_a_crashing_scan_restarts_from_its_checkpoint_with_growing_delays_and_completes(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
    crashes: int,
) -> None:
    """k ≤ max_retries crashes: k restarts (delays growing), each from the committed checkpoint, then completed."""
    root, expected = _library(tmp_path, media_tree)
    crash_index = 45
    crash_path = expected[crash_index]
    processor = CrashingProcessor(crash_path, crashes)
    fs = HangingFileSystem()
    cfg = make_config(
        safeguards={**QUIET_SAFEGUARDS, "max_retries": 3, "retry_interval": 0.05},
        scan={"batch_size": BATCH, "batch_seconds": 5},
    )
    rt = runtime_factory(cfg, processor=processor, fs=fs)
    library = rt.add_library(root)

    job = rt.start_scan(library.id)
    done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=30)

    assert done.status == "completed", done
    assert done.restarts == crashes
    assert job_row(db_url, job.id)["restarts"] == crashes
    assert done.files_processed == len(expected)
    paths = indexed_paths(db_url, library.id)
    assert paths == expected, "the index must be exactly the media files, each once"

    events = job_events(db_url, job.id)
    restarts = [data for kind, data in events if kind == "supervisor.restart"]
    assert len(restarts) == crashes
    delays = [r["delay"] for r in restarts]
    assert all(a < b for a, b in pairwise(delays)), f"delays must grow: {delays}"
    checkpoints = [r["checkpoint"] or "" for r in restarts]
    assert checkpoints == sorted(checkpoints), f"checkpoints must never go back: {checkpoints}"
    assert all(cp < crash_path for cp in checkpoints), "the crashed batch must not have committed"
    assert all(f"tag reader died on {crash_path}" in r["error"] for r in restarts)
    assert [r["restarts"] for r in restarts] == list(range(1, crashes + 1))

    # resumed, not re-walked: the crash file is retried, and besides it at most the one batch it was in
    assert set(processor.calls) == set(expected)
    assert processor.calls[crash_path] == crashes + 1
    repeated = {p for p, n in processor.calls.items() if n > 1}
    window = set(expected[max(0, crash_index - BATCH) : crash_index + 1])
    assert repeated <= window, f"re-processed outside the crashed batch: {sorted(repeated - window)}"
    first_checkpoint = checkpoints[0]
    assert first_checkpoint, "a batch should have committed before the crash"
    before = [
        d
        for d in fs.listings
        if (rel := _rel_dir(root, d)) and rel < first_checkpoint and not first_checkpoint.startswith(rel)
    ]
    assert before, "some directories lie wholly before the checkpoint"
    assert all(fs.listings[d] == 1 for d in before), {d: fs.listings[d] for d in before}

    # item 7: the decisions, in order
    kinds = [kind for kind, _ in events]
    assert kinds == ["job.started", *["supervisor.restart"] * crashes, "job.completed"], kinds
    assert_database_valid(db_url)


def _rel_dir(root: Path, path: str) -> str:
    rel = Path(path).relative_to(root).as_posix()
    return "" if rel == "." else rel + "/"


def test_a_scan_crashing_past_max_retries_within_the_window_fails_and_stops_restarting(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """More crashes than max_retries within retry_window: failed, restarts == max_retries, then quiet."""
    root, expected = _library(tmp_path, media_tree, n=40)
    crash_path = expected[25]
    processor = CrashingProcessor(crash_path, times=-1)  # crashes every time
    max_retries = 2
    retry_interval = 0.05
    cfg = make_config(
        safeguards={
            **QUIET_SAFEGUARDS,
            "max_retries": max_retries,
            "retry_interval": retry_interval,
            "retry_window": 600,
        },
        scan={"batch_size": BATCH, "batch_seconds": 5},
    )
    rt = runtime_factory(cfg, processor=processor)
    library = rt.add_library(root)
    failed = threading.Event()
    rt.subscribe(lambda e: failed.set() if e.kind == "job.failed" else None)

    job = rt.start_scan(library.id)
    done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=30)

    assert done.status == "failed", done
    assert done.restarts == max_retries
    row = job_row(db_url, job.id)
    assert row["status"] == "failed"
    assert row["restarts"] == max_retries
    assert "FatalProcessorError" in row["last_error"]
    assert crash_path in row["last_error"]
    assert failed.wait(5), "job.failed was published"
    assert processor.calls[crash_path] == max_retries + 1

    # no restart after giving up: several of the longest retry delays pass without one
    calls_then = processor.calls[crash_path]
    quiet_for = retry_interval * 2 ** (max_retries + 2) * 1.2
    assert stays_false(
        lambda: (
            processor.calls[crash_path] != calls_then
            or sum(kind == "supervisor.restart" for kind, _ in job_events(db_url, job.id)) != max_retries
            or rt.live_scans()
        ),
        quiet_for,
    )
    assert rt.get_job(job.id).restarts == max_retries

    events = job_events(db_url, job.id)
    kinds = [kind for kind, _ in events]
    assert kinds == ["job.started", *["supervisor.restart"] * max_retries, "job.failed"], kinds
    failure = events[-1][1]
    assert failure["restarts"] == max_retries
    assert "FatalProcessorError" in failure["error"]
    assert crash_path in failure["error"]
    # a failed library can be scanned again
    assert rt.list_jobs(library_id=library.id, status="failed").total == 1
    assert_database_valid(db_url)


def test_stopping_the_runtime_right_after_a_pause_leaves_no_timer_that_raises_later(
    sqlite_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    media_tree: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every thread the runtime started is quiet after stop(): no exception surfaces force_kill_timeout later."""
    root, _ = _library(tmp_path, media_tree, n=20)
    fs = HangingFileSystem(hang_on=[str(root / "Artist 000" / "Album 01")])
    raised: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: raised.append(args.exc_value))
    cfg = make_config(safeguards={**QUIET_SAFEGUARDS, "force_kill_timeout": 0.2}, scan={"batch_size": 5})
    rt = scanguard.Runtime.start(cfg, fs=fs)
    try:
        job = rt.start_scan(rt.add_library(root).id)
        assert fs.entered.wait(10)
        rt.pause_scan(job.id)
    finally:
        rt.stop()
        fs.release()
    timers = [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    for timer in timers:
        timer.join(5)
    assert raised == [], f"exceptions in runtime threads after stop: {raised!r}"


def test_crashes_further_apart_than_the_retry_window_never_exhaust_max_retries(
    sqlite_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """OTP intensity is per period: each crash alone in its window restarts, with the first delay, and completes."""
    root, expected = _library(tmp_path, media_tree, n=40)
    crash_path = expected[25]
    crashes = 3
    retry_interval = 0.05
    processor = CrashingProcessor(crash_path, times=crashes)
    cfg = make_config(
        # every restart waits at least 0.8 x retry_interval, longer than the window
        safeguards={
            **QUIET_SAFEGUARDS,
            "max_retries": 1,
            "retry_interval": retry_interval,
            "retry_window": retry_interval / 4,
        },
        scan={"batch_size": BATCH, "batch_seconds": 5},
    )
    rt = runtime_factory(cfg, processor=processor)
    library = rt.add_library(root)

    job = rt.start_scan(library.id)
    done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=30)

    assert done.status == "completed", done
    assert done.restarts == crashes
    restarts = [d for k, d in job_events(sqlite_url, job.id) if k == "supervisor.restart"]
    assert all(retry_interval * 0.8 - 1e-3 <= r["delay"] <= retry_interval * 1.2 + 1e-3 for r in restarts), (
        restarts
    )
    assert indexed_paths(sqlite_url, library.id) == expected


def test_the_failed_job_keeps_the_count_of_every_restart_it_had(
    sqlite_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """One early crash, then a burst past max_retries: restarts == supervisor.restart events, never fewer."""
    root, expected = _library(tmp_path, media_tree, n=20)
    crash_path = expected[12]
    window = 0.4
    seen = Counter[str]()

    def processor(ctx: FileContext) -> None:
        if ctx.path != crash_path:
            return
        seen[ctx.path] += 1
        if seen[ctx.path] == 2:
            threading.Event().wait(window * 1.5)  # a slow tag read: the early crash leaves the window
        raise FatalProcessorError(f"crash {seen[ctx.path]}")

    cfg = make_config(
        safeguards={**QUIET_SAFEGUARDS, "max_retries": 2, "retry_interval": 0.01, "retry_window": window},
        scan={"batch_size": 5, "batch_seconds": 5},
    )
    rt = runtime_factory(cfg, processor=processor)
    job = rt.start_scan(rt.add_library(root).id)
    done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=30)

    restarts = [d["restarts"] for k, d in job_events(sqlite_url, job.id) if k == "supervisor.restart"]
    assert done.status == "failed"
    assert restarts == [1, 2, 3], "one restart before the window, two inside it"
    assert done.restarts == len(restarts)


def test_stop_pauses_as_shutdown_a_job_that_was_waiting_for_its_supervised_restart(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    media_tree: Any,
) -> None:
    """A crashed scan between its crash and its restart is still this process's job: stop pauses it."""
    root, expected = _library(tmp_path, media_tree, n=20)
    processor = CrashingProcessor(expected[12], times=1)
    cfg = make_config(
        safeguards={**QUIET_SAFEGUARDS, "retry_interval": 30}, scan={"batch_size": 5, "batch_seconds": 5}
    )
    rt = scanguard.Runtime.start(cfg, processor=processor)
    try:
        job = rt.start_scan(rt.add_library(root).id)
        wait_for(lambda: processor.crashes_left == 0 and not rt.live_scans(), 10, "the crash")
        assert rt.get_job(job.id).status == "running", "waiting 30s for its restart"
    finally:
        rt.stop()

    row = job_row(db_url, job.id)
    assert (row["status"], row["pause_reason"]) == ("paused", "shutdown")
    assert [(k, d.get("reason")) for k, d in job_events(db_url, job.id)] == [
        ("job.started", None),
        ("job.paused", "shutdown"),
    ]


class FlakyFileSystem(HangingFileSystem):
    """Listing one directory raises an unexpected (non-OSError) error the first `times` times: a crash."""

    def __init__(self, crash_dir: str, times: int) -> None:
        super().__init__()
        self.crash_dir = crash_dir
        self.crashes_left = times

    def scandir(self, path: str) -> list[os.DirEntry[str]]:
        if os.path.normpath(path) == self.crash_dir and self.crashes_left > 0:
            self.crashes_left -= 1
            raise RuntimeError(f"driver bug listing {path}")
        return super().scandir(path)


def test_a_walk_that_crashes_inside_a_batch_is_restarted_from_its_checkpoint(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """Not only the processor: any unexpected error in a scan's message crashes it, and it is restarted."""
    root, expected = _library(tmp_path, media_tree, n=60)
    crash_dir = os.path.normpath(root / "Artist 000" / "Album 03")
    fs = FlakyFileSystem(crash_dir, times=2)
    cfg = make_config(
        safeguards={**QUIET_SAFEGUARDS, "max_retries": 3}, scan={"batch_size": BATCH, "batch_seconds": 5}
    )
    rt = runtime_factory(cfg, fs=fs)
    library = rt.add_library(root)

    job = rt.start_scan(library.id)
    done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=30)

    assert done.status == "completed", done
    assert done.restarts == 2
    assert indexed_paths(db_url, library.id) == expected
    events = job_events(db_url, job.id)
    assert [k for k, _ in events] == [
        "job.started",
        "supervisor.restart",
        "supervisor.restart",
        "job.completed",
    ]
    assert all(
        "RuntimeError: driver bug listing" in d["error"] for k, d in events if k == "supervisor.restart"
    )
    # the directories before the checkpoint were listed once: resumed, not re-walked
    assert fs.listings[os.path.normpath(root / "Artist 000" / "Album 00")] == 1
    assert_database_valid(db_url)
