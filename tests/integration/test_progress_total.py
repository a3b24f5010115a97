"""Issue 11, item 2: only a completed scan's count may stand in for the counting pass as a job's total."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import scanguard
from scanguard import FatalProcessorError, FileContext
from tests.integration.safeguards_support import QUIET_SAFEGUARDS

pytestmark = pytest.mark.timeout(60)

N_MEDIA = 80
BATCH = 10


class CrashOnce:
    """A host processor that stops the whole scan (FatalProcessorError) once, on one file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.armed = threading.Event()
        self.armed.set()

    def __call__(self, ctx: FileContext) -> dict[str, Any] | None:
        if ctx.path == self.path and self.armed.is_set():
            self.armed.clear()
            raise FatalProcessorError(f"stop at {ctx.path}")
        return None


def test_a_failed_jobs_partial_count_is_not_the_next_scans_total(
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """The issue's case: a job failed part-way; the next scan counts the library instead of taking that count."""
    root = tmp_path / "library"
    media_tree.build_tree(root, N_MEDIA, n_other=5)
    expected = sorted(media_tree.expected_media(root))
    crash = CrashOnce(expected[N_MEDIA // 2])
    cfg = make_config(
        safeguards={**QUIET_SAFEGUARDS, "max_retries": 0},
        scan={"batch_size": BATCH, "batch_seconds": 5},
    )
    rt = runtime_factory(cfg, processor=crash)
    library = rt.add_library(root)
    failed = rt.wait_for_job(rt.start_scan(library.id).id, timeout=30)
    assert failed.status == "failed", failed
    assert 0 < rt.get_library(library.id).media_files < N_MEDIA

    job = rt.start_scan(library.id)
    assert job.total_estimate is None, "no completed scan: the new job counts the library itself"
    done = rt.wait_for_job(job.id, timeout=30)
    assert done.status == "completed", done
    assert done.total_estimate == N_MEDIA
    assert done.files_processed == N_MEDIA


def test_a_completed_scans_count_stands_in_for_the_counting_pass(
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """A rescan starts with the latest completed scan's count as its total (no counting pass needed)."""
    root = tmp_path / "library"
    media_tree.build_tree(root, N_MEDIA, n_other=5)
    rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS))
    library = rt.add_library(root)
    first = rt.wait_for_job(rt.start_scan(library.id).id, timeout=30)
    assert (first.status, first.files_found) == ("completed", N_MEDIA)
    (root / "new album").mkdir()
    for i in range(5):
        (root / "new album" / f"{i:02d}.flac").write_bytes(b"x" * 10)

    rescan = rt.start_scan(library.id)
    assert rescan.total_estimate == N_MEDIA
    done = rt.wait_for_job(rescan.id, timeout=30)
    assert (done.status, done.files_processed) == ("completed", N_MEDIA + 5)
    third = rt.start_scan(library.id)
    assert third.total_estimate == N_MEDIA + 5, "the latest completed scan's count"
    rt.wait_for_job(third.id, timeout=30)
