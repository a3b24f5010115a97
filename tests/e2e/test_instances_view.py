"""DESIGN §8: GET /api/admin/instances and `scanguard status` show who serves and who runs what."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.safeguards_support import indexed_paths, job_row
from tests.support.instances import ServeProcess, instance_env, scanguard_command, serve_settings, serving
from tests.support.trees import build_tree, expected_media
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(150), pytest.mark.slow, pytest.mark.postgres]

LEASE_TTL = 3.0


def _instances(server: ServeProcess) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in server.call("GET", "/api/admin/instances")["instances"]}


def test_the_instances_view_shows_who_runs_the_scan_and_a_killed_instance_as_gone_after_the_lease(
    pg_url: str, tmp_path: Path
) -> None:
    """A and B serve one database; A's scan is listed under A by both; kill -9 of A: B shows A live until
    its heartbeat is older than the lease, then gone, and itself running the job it took over;
    `scanguard status` prints both instances; the job completes exactly."""
    root = tmp_path / "library"
    build_tree(root, 1500, 0)
    settings = serve_settings(SCANGUARD_SCAN_BATCH_SIZE="2", SCANGUARD_SAFEGUARDS_LEASE_TTL=str(LEASE_TTL))
    with serving(pg_url, tmp_path, ("a", settings), ("b", settings)) as (a, b):
        library, job = a.scan_folder(root)
        owner_a = job["owner"]
        seen_by_b = _instances(b)
        assert len(seen_by_b) == 2
        assert seen_by_b[owner_a]["pid"] == a.pid
        assert seen_by_b[owner_a]["live"] is True
        assert seen_by_b[owner_a]["jobs"] == [job["id"]]
        (owner_b,) = set(seen_by_b) - {owner_a}
        assert seen_by_b[owner_b]["pid"] == b.pid
        assert seen_by_b[owner_b]["jobs"] == []
        assert _instances(a).keys() == seen_by_b.keys()

        status = subprocess.run(
            [*scanguard_command(), "status", "--database", pg_url],
            env=instance_env(tmp_path, {}),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert "2 live instances" in status
        assert f"{owner_a}  live  pid {a.pid}" in status
        assert f"runs job {job['id']}" in status

        a.signal(signal.SIGKILL)
        a.wait_exit(10)
        gone = wait_for(
            lambda: (not (seen := _instances(b))[owner_a]["live"]) and seen,
            LEASE_TTL + 10,
            "B to show A as gone",
            interval=0.1,
        )
        assert gone[owner_b]["live"] is True
        taken = wait_for(
            lambda: (
                _instances(b)[owner_b]["jobs"] == [job["id"]]
                or job_row(pg_url, job["id"])["status"] == "completed"
            ),
            30,
            "B to run the job A left",
            interval=0.1,
        )
        assert taken
        wait_for(lambda: job_row(pg_url, job["id"])["status"] == "completed", 60, "the job to complete")
    assert indexed_paths(pg_url, library["id"]) == sorted(expected_media(root))
