"""`kill -9` of a real `scanguard scan` process at random points, rerun until it exits 0 (issue 2, item 2)."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.support.db import db_rows
from tests.support.trees import build_tree, expected_media, expected_skips
from tests.support.waiting import UNWATCHED, wait_for

pytestmark = [pytest.mark.timeout(150), pytest.mark.slow]

SEED = int(os.environ.get("SCANGUARD_TEST_SEED", "20261129"))
N_MEDIA = 3000
KILLS = 5
BATCH = 5


def scanguard_command() -> list[str]:
    script = Path(sys.executable).with_name("scanguard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "scanguard.cli"]


def child_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """This environment minus the developer's SCANGUARD_* settings, with its own data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGUARD_")}
    env.update(UNWATCHED)
    env.update(XDG_DATA_HOME=str(tmp_path / "xdg"), SCANGUARD_LOG_LEVEL="warning", **settings)
    return env


def committed_count(url: str) -> int:
    """The job's committed progress, read straight from the database (0 before the schema exists)."""
    try:
        rows = db_rows(url, "SELECT COALESCE(MAX(files_processed), 0) FROM scan_jobs")
    except (sqlite3.OperationalError, asyncpg.UndefinedTableError):
        return 0
    return int(rows[0][0])


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


def test_kill_9_of_scanguard_scan_at_random_points_then_rerunning_it_indexes_exactly_the_tree(
    db_url: str, tmp_path: Path
) -> None:
    """Each run commits at least one batch, then dies by SIGKILL at a random progress point; the next run
    adopts the orphan and resumes from its checkpoint; the run that finishes exits 0 with the exact set."""
    rng = random.Random(SEED)
    seed = f"seed={SEED} (rerun with SCANGUARD_TEST_SEED={SEED})"
    root = tmp_path / "lib"
    build_tree(root, N_MEDIA, 100)
    expected = expected_media(root)
    env = child_env(tmp_path, SCANGUARD_SCAN_BATCH_SIZE=str(BATCH))
    command = [*scanguard_command(), "scan", str(root), "--database", db_url, "--no-progress"]
    kills: list[int] = []
    done = None
    for run in range(KILLS + 3):
        log = tmp_path / f"run-{run}.log"
        committed = committed_count(db_url)
        # a random point between one more batch and an even share of what is left (never the very end)
        share = max(BATCH, (int(N_MEDIA * 0.9) - committed) // (KILLS - len(kills) + 1))
        target = committed + BATCH + rng.randrange(share)
        with log.open("w") as out:
            proc = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            try:
                if len(kills) < KILLS:
                    wait_for(
                        lambda p=proc, t=target: p.poll() is not None or committed_count(db_url) >= t,
                        60,
                        f"run {run} to commit up to {target} files",
                    )
                    if proc.poll() is None:
                        os.kill(proc.pid, signal.SIGKILL)
                        assert proc.wait(timeout=10) == -signal.SIGKILL
                        kills.append(committed_count(db_url))
                        assert kills[-1] > committed, f"run {run} committed a batch before it died: {seed}"
                        continue
                code = proc.wait(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
        assert code == 0, f"run {run} exited {code}: {seed}\n{_tail(log)}"
        done = run
        break
    assert done is not None, f"no run completed: {seed}"
    assert len(kills) == KILLS, (
        f"killed at {kills}: the scan finished too fast to be killed {KILLS} times: {seed}"
    )

    jobs = db_rows(
        db_url, "SELECT id, status, files_found, files_processed, files_skipped, skip_reasons FROM scan_jobs"
    )
    assert len(jobs) == 1, f"one job, resumed after every kill: {jobs}: {seed}"
    (job_id, status, found, processed, skipped, _reasons) = jobs[0]
    paths = [p for (p,) in db_rows(db_url, "SELECT path FROM media_files")]
    assert len(paths) == len(set(paths)), f"duplicate rows: {seed}"
    assert set(paths) == expected, (
        f"missing {sorted(expected - set(paths))[:5]}, extra {sorted(set(paths) - expected)[:5]}: {seed}"
    )
    assert status == "completed"
    assert processed == found == len(expected), f"counters add up across {KILLS} kills: {seed}"
    assert skipped == sum(expected_skips(root).values()), seed
    pauses = db_rows(db_url, f"SELECT data FROM events WHERE job_id = {job_id} AND kind = 'job.paused'")
    reasons = [json.loads(data)["reason"] for (data,) in pauses]
    assert reasons == ["orphaned"] * KILLS, (
        f"each kill left an orphan that the next run paused, then resumed: {seed}"
    )


def test_rerunning_scanguard_scan_on_a_scanned_folder_exits_0_and_writes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    """The second run is an unchanged rescan: a new job, completed, the same rows untouched."""
    root = tmp_path / "lib"
    build_tree(root, 200, 10)
    env = child_env(tmp_path)
    command = [*scanguard_command(), "scan", str(root), "--database", db_url, "--no-progress"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert first.returncode == 0, first.stderr
    rows = db_rows(
        db_url, "SELECT id, path, size, mtime, scan_job_id, last_seen_at, missing_since FROM media_files"
    )
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert second.returncode == 0, second.stderr
    again = db_rows(
        db_url, "SELECT id, path, size, mtime, scan_job_id, last_seen_at, missing_since FROM media_files"
    )
    assert sorted(again) == sorted(rows), "the unchanged rescan touched no row"
    assert {r[1] for r in rows} == expected_media(root)
    statuses = db_rows(db_url, "SELECT status, files_changed, bytes_processed FROM scan_jobs ORDER BY id")
    assert statuses[0][0] == "completed"
    assert statuses[1] == ("completed", 0, 0)
