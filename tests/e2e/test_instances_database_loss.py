"""DESIGN §8: a PostgreSQL restart under two instances — both keep serving, the scan completes exactly,
and the event listeners reconnect and replay what was committed meanwhile."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from tests.integration.safeguards_support import assert_database_valid, indexed_paths, job_row
from tests.support import postgres
from tests.support.instances import TOKEN, ApiError, ServeProcess, serve_settings, serving
from tests.support.sse import SseReader
from tests.support.trees import build_tree, expected_media
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow, pytest.mark.postgres]


def _ready(server: ServeProcess) -> bool:
    try:
        return server.call("GET", "/readyz", timeout=5)["status"] == "ready"
    except (ApiError, OSError):
        return False


def test_a_postgresql_restart_mid_scan_is_survived_by_both_instances_and_the_scan_completes_exactly(
    throwaway_pg: postgres.ThrowawayServer, tmp_path: Path
) -> None:
    """A scans, B streams events; PostgreSQL restarts (immediate: every session cut): both answer /readyz
    again, A's crashed batch is retried from its checkpoint, the job completes with the exact set, and B's
    stream carries its completion (B's listener reconnected)."""
    url = postgres.create_database(throwaway_pg.admin_url)
    root = tmp_path / "library"
    build_tree(root, 1200, 0)
    settings = serve_settings(SCANGUARD_SCAN_BATCH_SIZE="2")
    with (
        serving(url, tmp_path, ("a", settings), ("b", settings)) as (a, b),
        closing(SseReader(b.base + "/api/admin/events/stream?after_id=0", TOKEN)) as reader,
    ):
        library, job = a.scan_folder(root)
        wait_for(lambda: job_row(url, job["id"])["files_processed"] >= 50, 60, "A to commit batches")

        throwaway_pg.restart("immediate")

        for server in (a, b):
            wait_for(lambda s=server: _ready(s), 60, f"{server.name} to answer /readyz again", interval=0.2)
        done = wait_for(
            lambda: (row := job_row(url, job["id"]))["status"] in ("completed", "failed") and row,
            120,
            "the scan to finish after the restart",
            interval=0.2,
        )
        assert done["status"] == "completed", done
        wait_for(
            lambda: any(f.event == "job.completed" for f in reader.events()),
            30,
            "B's stream to carry the completion",
        )
        assert "events.listener_lost" in b.log_text()
    try:
        assert indexed_paths(url, library["id"]) == sorted(expected_media(root))
        assert_database_valid(url)
    finally:
        postgres.drop_database(throwaway_pg.admin_url, url)
