"""DESIGN §8: an owner frozen (SIGSTOP) inside a batch's transaction is taken over within the bound.

Its session is left idle in a transaction holding the lease's and the job's row locks; the session's
idle_in_transaction_session_timeout ends it, and the other instance's lock waits (lock_timeout) are retried
instead of hanging, so the takeover comes within lease_ttl + orphaned_job_threshold + 2 watchdog ticks.
"""

from __future__ import annotations

import os
import random
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.safeguards_support import assert_database_valid, indexed_paths, job_row
from tests.support.db import db_rows
from tests.support.instances import ServeProcess, serve_settings, serving
from tests.support.trees import build_tree, expected_media
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow, pytest.mark.postgres]

LEASE_TTL = 3.0
ORPHANED = 2.0
TICK = 0.5
BOUND = LEASE_TTL + ORPHANED + 2 * TICK
REPO = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("SCANGUARD_TEST_SEED", "20261130"))


def _events(url: str, job_id: int) -> list[tuple[str, str, datetime]]:
    rows = db_rows(url, f"SELECT kind, instance, at FROM events WHERE job_id = {job_id} ORDER BY id")
    return [(str(k), str(i), at) for k, i, at in rows]


def _woken_harmless(
    a: ServeProcess,
    pg_url: str,
    job_id: int,
    done: dict[str, Any],
    final: list[tuple[str, str, datetime]],
    *,
    in_transaction: bool,
) -> None:
    """After SIGCONT: A stops its scan, keeps serving, and changes nothing of the job B completed."""
    wait_for(
        lambda: a.call("GET", "/api/admin/scanner/safeguards/status")["supervisor"]["live_scans"] == 0,
        30,
        "A to stop its scan",
        interval=0.1,
    )
    assert a.call("GET", "/readyz")["status"] == "ready", "A keeps serving"
    if in_transaction:
        # its held batch failed (its session was ended): a crash whose restart, or a store failure whose
        # pause, A drops because the job moved on — unless A's validator stopped the scan first (the job
        # is no longer A's in the database), which leaves nothing to drop
        wait_for(
            lambda: any(
                line in a.log_text()
                for line in (
                    "supervisor.relaunch_dropped",
                    "supervisor.store_pause_dropped",
                    '"direction": "actor_not_running_in_db", "action": "stopped"',
                )
            ),
            60,
            "A's restart or pause to be dropped, or its scan stopped by its validator",
        )
        assert "store.operation_failed" in a.log_text(), "A's held batch failed: its session was ended"
    else:
        assert a.call("GET", f"/api/admin/scanner/jobs/{job_id}")["job"]["status"] == "completed"
    assert job_row(pg_url, job_id) == done, "A committed nothing after it woke"
    events = _events(pg_url, job_id)
    assert events[: len(final)] == final
    # A may only record its own decisions (its validator stopping the scan), never a change of the job
    assert {kind for kind, _instance, _at in events[len(final) :]} <= {"validator.fixed"}, events


def _frozen_owner_scenario(pg_url: str, tmp_path: Path, *, in_transaction: bool, freeze_after: int) -> None:
    """A owns a scan; once it committed `freeze_after` files it is SIGSTOPped (first holding a batch's
    transaction open, if asked); B must take over within the bound and complete the exact set; then A is
    woken and must commit nothing, stop its scan and keep serving."""
    root = tmp_path / "library"
    build_tree(root, 1500, 0)
    expected = sorted(expected_media(root))
    hold_dir = tmp_path / "hold"
    hold_dir.mkdir()
    settings = serve_settings(
        SCANGUARD_SCAN_BATCH_SIZE="2",
        SCANGUARD_SAFEGUARDS_LEASE_TTL=str(LEASE_TTL),
        SCANGUARD_SAFEGUARDS_ORPHANED_JOB_THRESHOLD=str(ORPHANED),
        SCANGUARD_SAFEGUARDS_WATCHDOG_INTERVAL=str(TICK),
        SCANGUARD_SAFEGUARDS_RETRY_INTERVAL="0.2",
    )
    held = {
        **settings,
        "SCANGUARD_TEST_FAULT_HOOK": "tests.support.hold_hook:hold_batch",
        "SCANGUARD_TEST_HOLD_DIR": str(hold_dir),
        "PYTHONPATH": str(REPO),
    }
    with serving(pg_url, tmp_path, ("a", held), ("b", settings)) as (a, _b):
        library, job = a.scan_folder(root)
        owner_a = job["owner"]
        wait_for(
            lambda: job_row(pg_url, job["id"])["files_processed"] >= freeze_after,
            60,
            f"A to commit {freeze_after} files",
            interval=0.005,
        )
        if in_transaction:
            (hold_dir / "hold").touch()
            wait_for((hold_dir / "holding").exists, 30, "A to hold a batch's transaction open")
        a.signal(signal.SIGSTOP)
        frozen_at = datetime.now(UTC)
        (hold_dir / "release").touch()  # A lets a held batch commit as soon as it wakes
        at_freeze = job_row(pg_url, job["id"])
        assert at_freeze["status"] == "running", at_freeze

        done = wait_for(
            lambda: (row := job_row(pg_url, job["id"]))["status"] == "completed" and row,
            90,
            "B to take over and complete the scan",
            interval=0.1,
        )
        taken = [at for kind, instance, at in _events(pg_url, job["id"]) if kind == "job.resumed"]
        assert taken, "B resumed the job"
        took = (taken[0] - frozen_at).total_seconds()
        assert took <= BOUND, f"taken over after {took:.1f}s (bound {BOUND:g}s)"
        assert done["owner"] != owner_a
        assert done["files_processed"] == len(expected)
        final = _events(pg_url, job["id"])

        a.signal(signal.SIGCONT)
        _woken_harmless(a, pg_url, job["id"], done, final, in_transaction=in_transaction)

    assert indexed_paths(pg_url, library["id"]) == expected
    assert_database_valid(pg_url)


def test_an_owner_frozen_inside_a_batch_transaction_is_taken_over_within_the_bound_and_wakes_harmless(
    pg_url: str, tmp_path: Path
) -> None:
    """A holds a batch's transaction open (test hook) and is SIGSTOPped; B adopts and resumes the job
    within the bound and completes the exact set; SIGCONT: A's held batch commits nothing, its scan stops
    (its restart is dropped: the job is B's), and A keeps serving."""
    _frozen_owner_scenario(pg_url, tmp_path, in_transaction=True, freeze_after=50)


@pytest.mark.parametrize("moment", range(2))
def test_an_owner_frozen_at_a_seeded_moment_is_taken_over_within_the_bound_and_wakes_harmless(
    pg_url: str, tmp_path: Path, moment: int
) -> None:
    """The same, SIGSTOP at a point of the scan drawn from the seed (wherever A happens to be then)."""
    freeze_after = random.Random(SEED * 10 + moment).randrange(10, 600)
    _frozen_owner_scenario(pg_url, tmp_path, in_transaction=False, freeze_after=freeze_after)
