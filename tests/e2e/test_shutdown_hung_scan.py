"""Issue 3, items 2 and 4 together: a process whose scan is stuck in a filesystem call still shuts down on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.safeguards_support import child_env, job_row, trail
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(60), pytest.mark.slow]

SHUTDOWN_TIMEOUT = 3.0
FORCE_KILL_TIMEOUT = 1.0
SLACK = 5.0


def _lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def test_sigterm_to_a_host_whose_scan_hangs_in_scandir_pauses_it_and_exits_0(
    sqlite_url: str, tmp_path: Path, media_tree: Any
) -> None:
    """The stuck thread is abandoned (it cannot write), not waited for: the process exits 0 in time."""
    root = tmp_path / "library"
    media_tree.build_tree(root, 40)
    out_path = tmp_path / "host.out"
    out = out_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.e2e.host_app",
            "--database",
            sqlite_url,
            "--library",
            str(root),
            "--hang",
            str(root / "Artist 000" / "Album 02"),
        ],
        env=child_env(
            SCANGUARD_SCAN_BATCH_SIZE="5",
            SCANGUARD_LOG_LEVEL="warning",
            SCANGUARD_SAFEGUARDS_SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT),
            SCANGUARD_SAFEGUARDS_FORCE_KILL_TIMEOUT=str(FORCE_KILL_TIMEOUT),
            SCANGUARD_SAFEGUARDS_STALL_THRESHOLD="600",
            PYTHONPATH=str(Path(__file__).resolve().parents[2]),
        ),
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        wait_for(
            lambda: proc.poll() is not None or any("hung" in line for line in _lines(out_path)),
            30,
            "the host's scan to hang in scandir",
        )
        assert proc.poll() is None, out_path.read_text(errors="replace")
        (job_id,) = next(line["jobs"] for line in _lines(out_path) if "jobs" in line)
        assert job_row(sqlite_url, job_id)["status"] == "running"

        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=SHUTDOWN_TIMEOUT + FORCE_KILL_TIMEOUT + SLACK)
        except subprocess.TimeoutExpired:
            stopped = any(line.get("stopped") for line in _lines(out_path))
            pytest.fail(
                f"the process did not exit after SIGTERM (Runtime.stop returned: {stopped}); "
                "the hung scan thread keeps the interpreter alive"
            )
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        out.close()

    assert code == 0, out_path.read_text(errors="replace")[-3000:]
    assert took <= SHUTDOWN_TIMEOUT + FORCE_KILL_TIMEOUT + SLACK
    row = job_row(sqlite_url, job_id)
    assert (row["status"], row["pause_reason"]) == ("paused", "shutdown")
    assert trail(sqlite_url, job_id) == [("job.started", None), ("job.paused", "shutdown")]
