"""`scanguard serve` killed with -9 mid-scan, restarted on the same database; and stopped with SIGTERM."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.http.conftest import Api, ServerProcess, wait_until
from tests.support.db import db_rows
from tests.support.trees import build_tree, expected_media

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]
SLOW_SCAN = {"SCANGUARD_SCAN_BATCH_SIZE": "2"}  # ~3 s per 1,000 files: a scan long enough to interrupt


def test_kill_9_mid_scan_then_restart_shows_the_job_orphaned_and_resume_completes_the_exact_file_set(
    tmp_path: Path,
    db_url: str,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
) -> None:
    tree = tmp_path / "media"
    build_tree(tree, 2500, 40)  # with hidden files, non-media files, a symlink loop and a file symlink
    expected = expected_media(tree)

    first = start_server(db_url, env=SLOW_SCAN)
    api = api_for(first)
    library = api.post("/api/admin/libraries", json={"path": str(tree)}).json["library"]["id"]
    job_id = api.post(f"/api/admin/scanner/safe/start/{library}").json["job"]["id"]
    wait_until(
        lambda: api.get(f"/api/admin/scanner/jobs/{job_id}").json["job"]["files_processed"] >= 200,
        30,
        "the scan to commit a few batches",
    )
    first.kill()
    status, processed = db_rows(db_url, f"SELECT status, files_processed FROM scan_jobs WHERE id = {job_id}")[
        0
    ]
    assert status == "running", status
    assert 200 <= processed < len(expected), processed

    second = start_server(db_url, env=SLOW_SCAN)
    api = api_for(second)
    current = api.get("/api/admin/scanner/current-jobs").json["jobs"]
    assert [(j["id"], j["status"], j["pause_reason"]) for j in current] == [(job_id, "paused", "orphaned")]

    events = api.get(f"/api/admin/events?job_id={job_id}").json["events"]
    kinds = [e["kind"] for e in events]
    assert "watchdog.orphan_found" in kinds
    assert any(e["kind"] == "job.paused" and e["data"]["reason"] == "orphaned" for e in events), kinds

    resumed = api.post(f"/api/admin/scanner/safe/resume/{job_id}")
    assert resumed.status == 200
    assert resumed.json["job"]["status"] == "running"
    done = api.wait_job(job_id, ("completed", "failed", "paused"), timeout=90)
    assert done["status"] == "completed", done
    assert api.all_files(library) == expected
    files = api.get(f"/api/admin/libraries/{library}/files?limit=1").json["total"]
    assert files == len(expected)  # no duplicates from the replayed batch
    assert db_rows(db_url, f"SELECT count(*) FROM media_files WHERE library_id = {library}")[0][0] == len(
        expected
    )
    assert second.terminate() == 0


def test_sigterm_exits_0_and_pauses_the_running_scan_with_reason_shutdown(
    tmp_path: Path,
    sqlite_url: str,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
) -> None:
    tree = tmp_path / "media"
    build_tree(tree, 3000, 0, hidden=False, symlinks=False)
    server = start_server(sqlite_url, env=SLOW_SCAN)
    api = api_for(server)
    library = api.post("/api/admin/libraries", json={"path": str(tree)}).json["library"]["id"]
    job_id = api.post(f"/api/admin/scanner/safe/start/{library}").json["job"]["id"]
    wait_until(
        lambda: api.get(f"/api/admin/scanner/jobs/{job_id}").json["job"]["files_processed"] >= 50,
        30,
        "the scan to be under way",
    )

    assert server.terminate(timeout=30) == 0

    status, reason = db_rows(sqlite_url, f"SELECT status, pause_reason FROM scan_jobs WHERE id = {job_id}")[0]
    assert (status, reason) == ("paused", "shutdown")
    paused = [
        json.loads(data) if isinstance(data, str) else data
        for (data,) in db_rows(
            sqlite_url, f"SELECT data FROM events WHERE job_id = {job_id} AND kind = 'job.paused'"
        )
    ]
    assert [p["reason"] for p in paused] == ["shutdown"]
    assert "listening on" in server.log()
    assert "runtime.stopped" in server.log()
