"""Several processes on one database (DESIGN §8): the lease keeps a library's scan to one of them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import scanguard
from tests.e2e.test_cli_kill import child_env, scanguard_command
from tests.support.db import db_rows
from tests.support.trees import build_tree, expected_media
from tests.support.waiting import QUIET_SAFEGUARDS, GatedFileSystem

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def test_a_second_process_scanning_the_same_folder_is_refused_and_leaves_the_first_ones_scan_alone(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """While this process's scan is held mid-walk (no transaction open), `scanguard scan` of the same folder
    in another process exits 1 naming the busy job, and its boot recovery does not take the live scan for
    an orphan; released, the first scan completes exactly, never paused."""
    root = tmp_path / "lib"
    build_tree(root, 300, 10)
    expected = expected_media(root)
    gate = GatedFileSystem(sorted(p for p in root.iterdir() if p.is_dir())[1])
    rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS, scan={"batch_size": 5}), fs=gate)
    job = rt.start_scan(rt.add_library(root).id)
    try:
        assert gate.reached.wait(30), "the scan reached the held directory"
        rt.store.ping()  # the writer's queue is drained: no transaction is open
        command = [*scanguard_command(), "scan", str(root), "--database", db_url, "--no-progress"]
        second = subprocess.run(
            command, env=child_env(tmp_path), capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        gate.release.set()
    assert second.returncode == 1, second.stderr[-2000:]
    assert f"job {job.id} is active" in second.stderr
    done = rt.wait_for_job(job.id, timeout=60)
    assert (done.status, done.files_processed) == ("completed", len(expected))
    assert db_rows(db_url, "SELECT COUNT(*) FROM scan_jobs") == [(1,)]
    kinds = [kind for (kind,) in db_rows(db_url, f"SELECT kind FROM events WHERE job_id = {job.id}")]
    assert kinds == ["job.started", "job.completed"], "never paused or adopted by the other process"
    paths = [p for (p,) in db_rows(db_url, "SELECT path FROM media_files")]
    assert sorted(paths) == sorted(expected)
