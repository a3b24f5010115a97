"""Issue 3, items 3 and 7: `kill -9` of a real `scanguard scan` process, then boot recovery on the same database."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import scanguard
from tests.integration.safeguards_support import (
    QUIET_SAFEGUARDS,
    assert_database_valid,
    child_env,
    count,
    indexed_paths,
    job_events,
    job_row,
    scanguard_command,
)
from tests.support.db import db_rows
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

N_FILES = 800


@pytest.fixture
def killed_scan(db_url: str, tmp_path: Path, media_tree: Any) -> tuple[Path, int, int]:
    """A `scanguard scan` killed with SIGKILL after it committed some batches: (root, library id, job id)."""
    root = tmp_path / "library"
    media_tree.build_tree(root, N_FILES, n_other=20)
    log = (tmp_path / "scan.log").open("w")
    proc = subprocess.Popen(
        [*scanguard_command(), "scan", str(root), "--database", db_url, "--no-progress"],
        env=child_env(SCANGUARD_SCAN_BATCH_SIZE="2", SCANGUARD_LOG_LEVEL="warning"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: proc.poll() is not None or committed_count(db_url) >= 20,
            30,
            "the scan process to commit a few batches",
            interval=0.01,
        )
        assert proc.poll() is None, f"the scan ended before it could be killed: {proc.returncode}"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
    (library_id, job_id, status, processed) = _the_job(db_url)
    assert status == "running", "killed mid-scan, the row still says running"
    assert 0 < processed < N_FILES
    return root, library_id, job_id


def committed_count(url: str) -> int:
    try:
        return count(url, "SELECT COALESCE(MAX(files_processed), 0) FROM scan_jobs")
    except Exception:  # noqa: BLE001 - the schema may not exist yet while the child migrates
        return 0


def _the_job(url: str) -> tuple[int, int, str, int]:
    ((library_id, job_id, status, processed),) = db_rows(
        url, "SELECT library_id, id, status, files_processed FROM scan_jobs"
    )
    return int(library_id), int(job_id), str(status), int(processed)


def test_a_job_left_running_by_a_killed_process_is_paused_as_orphaned_before_start_returns(
    db_url: str,
    killed_scan: tuple[Path, int, int],
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """Boot recovery: orphaned when start returns (no waiting); resuming yields the exact set, no duplicate."""
    root, library_id, job_id = killed_scan
    checkpoint = job_row(db_url, job_id)["checkpoint"]

    rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS))

    job = rt.get_job(job_id)  # right away: recovery happened inside start
    assert (job.status, job.pause_reason) == ("paused", "orphaned")
    assert job.checkpoint == checkpoint, "the dead process's committed checkpoint is kept"
    kinds = [k for k, _ in job_events(db_url, job_id)]
    assert kinds[-3:] == ["watchdog.orphan_found", "job.paused", "orphan.adopted"], kinds
    found = job_events(db_url, job_id)[-3][1]
    assert found["sweep"] == "boot"

    rt.resume_scan(job_id)
    done = rt.wait_for_job(job_id, ("completed", "failed"), timeout=60)
    assert done.status == "completed", done
    expected = sorted(media_tree.expected_media(root))
    paths = indexed_paths(db_url, library_id)
    assert len(paths) == len(set(paths)), "no duplicate rows"
    assert paths == expected

    decisions = [(k, d.get("reason")) for k, d in job_events(db_url, job_id)]
    assert decisions == [
        ("job.started", None),
        ("watchdog.orphan_found", None),
        ("job.paused", "orphaned"),
        ("orphan.adopted", None),
        ("job.resumed", None),
        ("job.completed", None),
    ]
    assert job_events(db_url, job_id)[3][1]["action"] == "paused"
    assert_database_valid(db_url)


def test_with_auto_resume_orphans_start_itself_resumes_the_killed_job_to_completion(
    db_url: str,
    killed_scan: tuple[Path, int, int],
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """auto_resume_orphans=True: start returns with the orphan already resumed; it completes exactly."""
    root, library_id, job_id = killed_scan

    rt = runtime_factory(make_config(safeguards={**QUIET_SAFEGUARDS, "auto_resume_orphans": True}))

    job = rt.get_job(job_id)
    assert job.status in ("running", "completed"), job
    assert job.pause_reason is None
    done = rt.wait_for_job(job_id, ("completed", "failed", "paused"), timeout=60)
    assert done.status == "completed", done
    expected = sorted(media_tree.expected_media(root))
    paths = indexed_paths(db_url, library_id)
    assert len(paths) == len(set(paths)), "no duplicate rows"
    assert paths == expected

    events = job_events(db_url, job_id)
    decisions = [(k, d.get("reason")) for k, d in events if k != "job.completed"]
    assert decisions == [
        ("job.started", None),
        ("watchdog.orphan_found", None),
        ("job.paused", "orphaned"),
        ("job.resumed", None),
        ("orphan.adopted", None),
    ]
    assert events[-1][0] == "job.completed"
    assert next(d for k, d in events if k == "orphan.adopted")["action"] == "resumed"
    assert_database_valid(db_url)
