"""`scanguard scan` starts its walk while it imports the runtime (issue 18, item 1): the scan takes that walk
when it is the one it needs — the library's root walked whole, counted on a new database — and walks its own
otherwise (a part of a library, a resume from a checkpoint); the index is the tree's either way."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scanguard.exit_codes import EXIT_OK
from tests.e2e.test_cli_kill import child_env, scanguard_command
from tests.support.db import db_rows, present_paths
from tests.support.trees import build_tree, expected_media

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def _scan(url: str, env: dict[str, str], path: Path) -> subprocess.CompletedProcess[str]:
    command = [*scanguard_command(), "scan", str(path), "--database", url, "--no-progress"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def _walks_ahead(stderr: str) -> list[bool]:
    """Whether each scan of the run took a walk started ahead (its `scan.walking` log line says)."""
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line["walk_ahead"] for line in lines if line.get("event") == "scan.walking"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**child_env(tmp_path), "SCANGUARD_LOG_LEVEL": "info"}


def test_a_first_scan_and_a_rescan_take_the_walk_started_while_importing(
    sqlite_url: str, tmp_path: Path, env: dict[str, str]
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 300, 10)
    expected = expected_media(root)

    first = _scan(sqlite_url, env, root)
    assert first.returncode == EXIT_OK, first.stderr
    assert _walks_ahead(first.stderr) == [True]
    assert present_paths(sqlite_url, 1) == expected
    # the walk ahead counted (a new database: no earlier scan's count), and its count reached the job
    assert db_rows(sqlite_url, "SELECT total_estimate FROM scan_jobs") == [(len(expected),)]

    again = _scan(sqlite_url, env, root)
    assert again.returncode == EXIT_OK, again.stderr
    assert _walks_ahead(again.stderr) == [True]
    assert db_rows(sqlite_url, "SELECT files_processed, files_changed FROM scan_jobs WHERE id = 2") == [
        (len(expected), 0)
    ]


def test_a_scan_of_part_of_a_library_walks_its_own_and_indexes_the_same(
    sqlite_url: str, tmp_path: Path, env: dict[str, str]
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 300, 10)
    assert _scan(sqlite_url, env, root).returncode == EXIT_OK
    (root / "Artist 002" / "Album 01" / "added.flac").write_bytes(b"new")

    part = _scan(sqlite_url, env, root / "Artist 002")
    assert part.returncode == EXIT_OK, part.stderr
    assert _walks_ahead(part.stderr) == [False]
    assert present_paths(sqlite_url, 1) == expected_media(root)
