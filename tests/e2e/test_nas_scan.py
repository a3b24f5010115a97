"""Scans of a library on slow storage with several walkers (issue 18, item 2): exact, and exact after kill -9.

The library is served through tests/support/slowfs.py, a FUSE passthrough that sleeps per call, so the
listers run well ahead of the walk; these tests skip, saying why, where FUSE cannot be used.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli_kill import child_env, committed_count, scanguard_command
from tests.support.db import db_rows
from tests.support.slowfs import fuse_unavailable, slow_mount
from tests.support.trees import build_tree, expected_media, expected_skips
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

SEED = int(os.environ.get("SCANGUARD_TEST_SEED", "20261204"))
DELAY = 0.002  # seconds per FUSE call: a slow NAS, so that a kill lands mid-scan
WALKERS = "8"


@pytest.fixture(scope="module")
def fuse() -> None:
    reason = fuse_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def library(tmp_path: Path, fuse: None) -> Iterator[tuple[Path, Path]]:
    """(the source tree, its slow mount)."""
    root = tmp_path / "lib"
    build_tree(root, 1500, 80)
    with slow_mount(root, DELAY) as mnt:
        yield root, mnt


def _scan(mnt: Path, db_url: str) -> list[str]:
    return [*scanguard_command(), "scan", str(mnt), "--database", db_url, "--no-progress"]


def test_a_scan_of_a_slow_mount_with_several_walkers_indexes_exactly_the_tree(
    db_url: str, tmp_path: Path, library: tuple[Path, Path]
) -> None:
    """The index equals an independent walk of the source: media, skips by reason, one row per file."""
    root, mnt = library
    env = child_env(tmp_path, SCANGUARD_SCAN_WALKERS=WALKERS)
    done = subprocess.run(
        _scan(mnt, db_url), env=env, capture_output=True, text=True, timeout=150, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    paths = [p for (p,) in db_rows(db_url, "SELECT path FROM media_files")]
    assert len(paths) == len(set(paths))
    assert set(paths) == expected_media(root)
    ((status, processed, skipped, total),) = db_rows(
        db_url, "SELECT status, files_processed, files_skipped, total_estimate FROM scan_jobs"
    )
    assert (status, processed, skipped) == ("completed", len(paths), sum(expected_skips(root).values()))
    assert total == len(paths), "the counting pass, run beside the walk, gave the total"


def test_kill_9_mid_scan_of_a_slow_mount_with_several_walkers_then_rerunning_loses_and_doubles_nothing(
    db_url: str, tmp_path: Path, library: tuple[Path, Path]
) -> None:
    """Killed while its listers are ahead of the walk, each rerun resumes from the checkpoint, and the
    finished index is exactly the tree: nothing listed ahead was committed, nothing committed is lost."""
    root, mnt = library
    rng = random.Random(SEED)
    seed = f"seed={SEED} (rerun with SCANGUARD_TEST_SEED={SEED})"
    expected = expected_media(root)
    env = child_env(tmp_path, SCANGUARD_SCAN_WALKERS=WALKERS, SCANGUARD_SCAN_BATCH_SIZE="10")
    kills: list[int] = []
    for run in range(5):
        committed = committed_count(db_url)
        target = committed + 10 + rng.randrange(max(10, (len(expected) * 8 // 10 - committed) // 3))
        log = tmp_path / f"run-{run}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                _scan(mnt, db_url), env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            try:
                if len(kills) < 2:
                    wait_for(
                        lambda p=proc, t=target: p.poll() is not None or committed_count(db_url) >= t,
                        90,
                        f"run {run} to commit up to {target} files",
                    )
                    if proc.poll() is None:
                        os.kill(proc.pid, signal.SIGKILL)
                        assert proc.wait(timeout=10) == -signal.SIGKILL
                        kills.append(committed_count(db_url))
                        continue
                code = proc.wait(timeout=150)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
        assert code == 0, f"run {run} exited {code}: {seed}\n{log.read_text(errors='replace')[-3000:]}"
        break
    assert len(kills) == 2, f"killed at {kills}: the scan finished before it could be killed twice: {seed}"

    jobs = db_rows(db_url, "SELECT status, files_found, files_processed, files_skipped FROM scan_jobs")
    assert len(jobs) == 1, f"one job, resumed after every kill: {jobs}: {seed}"
    ((status, found, processed, skipped),) = jobs
    paths = [p for (p,) in db_rows(db_url, "SELECT path FROM media_files")]
    assert len(paths) == len(set(paths)), f"duplicate rows: {seed}"
    assert set(paths) == expected, (
        f"missing {sorted(expected - set(paths))[:5]}, extra {sorted(set(paths) - expected)[:5]}: {seed}"
    )
    assert status == "completed"
    assert processed == found == len(expected), f"counters add up across the kills at {kills}: {seed}"
    assert skipped == sum(expected_skips(root).values()), seed
