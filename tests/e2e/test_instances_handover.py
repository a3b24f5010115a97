"""DESIGN §8: a clean shutdown hands its scans over — another live instance resumes them at once."""

from __future__ import annotations

import signal
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.safeguards_support import assert_database_valid, indexed_paths, job_row, trail
from tests.support.db import db_rows
from tests.support.instances import serve_settings, serving
from tests.support.trees import build_tree, expected_media
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(150), pytest.mark.slow, pytest.mark.postgres]

N_FILES = 1500
WATCHDOG_INTERVAL = 1.0


def _event_at(url: str, job_id: int, kind: str, instance: str | None = None) -> datetime:
    where = f"job_id = {job_id} AND kind = '{kind}'"
    if instance is not None:
        where += f" AND instance = '{instance}'"
    ((at,),) = db_rows(url, f"SELECT MIN(at) FROM events WHERE {where}")
    assert at is not None, f"no {kind} event for job {job_id}"
    return at  # type: ignore[no-any-return]


def test_sigterm_of_the_owner_mid_scan_hands_the_scan_to_the_other_instance_which_finishes_it(
    pg_url: str, tmp_path: Path
) -> None:
    """A (owner) and B serve one database with auto_resume_orphans; SIGTERM to A mid-scan: A exits 0 having
    paused the scan `shutdown` and released the lease; B resumes it within two watchdog ticks, from the
    checkpoint, and completes it; the final set equals the filesystem, without duplicates."""
    root = tmp_path / "library"
    build_tree(root, N_FILES, 20)
    expected = sorted(expected_media(root))
    settings = serve_settings(
        SCANGUARD_SCAN_BATCH_SIZE="2",
        SCANGUARD_SAFEGUARDS_WATCHDOG_INTERVAL=str(WATCHDOG_INTERVAL),
    )
    with serving(pg_url, tmp_path, ("a", settings), ("b", settings)) as (a, b):
        library, job = a.scan_folder(root)
        owner_a = job["owner"]
        wait_for(lambda: job_row(pg_url, job["id"])["files_processed"] >= 100, 60, "A to commit batches")

        a.signal(signal.SIGTERM)
        assert a.wait_exit(30) == 0, a.log_text()[-3000:]

        paused_at = _event_at(pg_url, job["id"], "job.paused")
        row = job_row(pg_url, job["id"])
        assert row["files_processed"] < len(expected), "A was stopped mid-scan"
        ((lease_owner,),) = db_rows(
            pg_url, f"SELECT owner FROM library_leases WHERE library_id = {library['id']}"
        )
        assert lease_owner != owner_a, "A released its lease on the way out"

        done = wait_for(
            lambda: job_row(pg_url, job["id"])["status"] == "completed" and job_row(pg_url, job["id"]),
            90,
            "B to finish the scan",
            interval=0.1,
        )
        resumed_at = _event_at(pg_url, job["id"], "job.resumed")
        assert (resumed_at - paused_at).total_seconds() <= 2 * WATCHDOG_INTERVAL, (resumed_at, paused_at)
        assert done["owner"] != owner_a
        assert b.call("GET", f"/api/admin/scanner/jobs/{job['id']}")["job"]["status"] == "completed"

    paths = indexed_paths(pg_url, library["id"])
    assert paths == expected, "the final set equals the filesystem"
    assert done["files_processed"] == len(expected)
    assert trail(pg_url, job["id"], ("job.started", "job.paused", "job.resumed", "job.completed")) == [
        ("job.started", None),
        ("job.paused", "shutdown"),
        ("job.resumed", None),
        ("job.completed", None),
    ]
    ((handover,),) = db_rows(
        pg_url, f"SELECT instance FROM events WHERE job_id = {job['id']} AND kind = 'watchdog.handover'"
    )
    assert handover == done["owner"], "recorded once, by the instance that took the scan over"
    assert_database_valid(pg_url)
