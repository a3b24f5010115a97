"""Issue 3, items 4 and 7: SIGTERM to a `scanguard serve` running two scans, then a restart that resumes them."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import scanguard
from tests.integration.safeguards_support import (
    QUIET_SAFEGUARDS,
    assert_database_valid,
    child_env,
    indexed_paths,
    job_row,
    scanguard_command,
    trail,
)
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

TOKEN = "test-token-for-sigterm"
SHUTDOWN_TIMEOUT = 10.0
N_FILES = 600
LIFECYCLE = ("job.started", "job.paused", "job.resumed", "job.completed")


def _call(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - our own local server over http
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own local server
        return dict(json.loads(response.read()))


def test_sigterm_pauses_both_running_scans_as_shutdown_exits_0_and_a_restart_resumes_them(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """Both paused with reason shutdown within shutdown_timeout, exit 0; auto-resume completes both exactly."""
    roots = []
    for name in ("music", "photos"):
        root = tmp_path / name
        media_tree.build_tree(root, N_FILES, n_other=10)
        roots.append(root)
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [*scanguard_command(), "serve", "--port", "0", "--database", db_url],
        env=child_env(
            SCANGUARD_ADMIN_TOKEN=TOKEN,
            SCANGUARD_SCAN_BATCH_SIZE="1",
            SCANGUARD_SAFEGUARDS_SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT),
            SCANGUARD_LOG_LEVEL="warning",
            XDG_DATA_HOME=str(tmp_path / "xdg"),
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        listening = wait_for(
            lambda: (
                proc.poll() is not None
                or re.search(r"listening on (http://[^\s{]+)", log_path.read_text(errors="replace"))
            ),
            30,
            "scanguard serve to listen",
        )
        assert proc.poll() is None, log_path.read_text(errors="replace")
        assert isinstance(listening, re.Match)
        base = listening.group(1)
        jobs = []
        for root in roots:
            library = _call(base, "POST", "/api/admin/libraries", {"path": str(root)})["library"]
            jobs.append(_call(base, "POST", f"/api/admin/scanner/safe/start/{library['id']}")["job"])
        wait_for(
            lambda: all(job_row(db_url, j["id"])["files_processed"] >= 5 for j in jobs),
            30,
            "both scans to commit batches",
        )
        assert all(job_row(db_url, j["id"])["status"] == "running" for j in jobs)

        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=SHUTDOWN_TIMEOUT + 20)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()

    output = log_path.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert took <= SHUTDOWN_TIMEOUT, f"shutdown took {took:.1f}s"
    for job in jobs:
        row = job_row(db_url, job["id"])
        assert (row["status"], row["pause_reason"]) == ("paused", "shutdown"), row
        assert 0 < row["files_processed"] < N_FILES, "paused mid-scan, at its checkpoint"
        assert row["checkpoint"]
        assert trail(db_url, job["id"]) == [("job.started", None), ("job.paused", "shutdown")]

    # a restart with auto_resume_orphans resumes what a clean shutdown paused
    rt = runtime_factory(make_config(safeguards={**QUIET_SAFEGUARDS, "auto_resume_orphans": True}))
    for job, root in zip(jobs, roots, strict=True):
        done = rt.wait_for_job(job["id"], ("completed", "failed", "paused"), timeout=60)
        assert done.status == "completed", done
        paths = indexed_paths(db_url, job["library_id"])
        assert len(paths) == len(set(paths))
        assert paths == sorted(media_tree.expected_media(root))
        assert done.files_processed == N_FILES
        assert trail(db_url, job["id"], LIFECYCLE) == [
            ("job.started", None),
            ("job.paused", "shutdown"),
            ("job.resumed", None),
            ("job.completed", None),
        ]
        assert trail(db_url, job["id"], ["watchdog.handover"]) == [("watchdog.handover", None)]
    assert_database_valid(db_url)
