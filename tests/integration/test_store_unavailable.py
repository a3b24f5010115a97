"""Issue 11, item 1: a full disk under the database pauses the scan `store_unavailable` — never a crash loop.

The database lives on a real, small tmpfs mounted for the test; the test fills it with a ballast file,
so SQLite itself answers "database or disk is full" in the middle of the scan. Freeing the ballast lets
the same job finish from its checkpoint, each media file indexed exactly once.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import scanguard
from scanguard.exit_codes import EXIT_PAUSED
from tests.integration.safeguards_support import (
    QUIET_SAFEGUARDS,
    assert_database_valid,
    child_env,
    count,
    indexed_paths,
    job_row,
    kinds_of,
    scanguard_command,
    stays_false,
    trail,
)
from tests.support import postgres
from tests.support.waiting import ProcessorGate, wait_for

pytestmark = pytest.mark.timeout(90)

DISK_BYTES = 4 * 1024 * 1024
# what the ballast leaves free: room for a few batches (each ~12 WAL pages of 4 KiB since rows carry their
# device and inode, in one more index), not for the whole scan (~1.5 MB of WAL)
HEADROOM = 128 * 1024
BATCH = 20
N_MEDIA = 600


class SmallDisk:
    """A tmpfs of DISK_BYTES mounted for one test; `fill()` leaves HEADROOM free, `free()` gives it back."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.ballast = where / "ballast"

    def fill(self, headroom: int = HEADROOM) -> None:
        chunk = b"\0" * 65536
        with self.ballast.open("wb") as out:
            try:
                while True:
                    out.write(chunk)
                    out.flush()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        size = self.ballast.stat().st_size
        os.truncate(self.ballast, max(0, size - headroom))

    def free(self) -> None:
        self.ballast.unlink()

    def free_bytes(self) -> int:
        return os.statvfs(self.where).f_bavail * os.statvfs(self.where).f_frsize


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A real small filesystem (tmpfs) for the database; skipped where mounting is not permitted."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield SmallDisk(where)
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _config(make_config: Callable[..., scanguard.Config], url: str, **safeguards: Any) -> scanguard.Config:
    return make_config(
        database={"url": url},
        safeguards={**QUIET_SAFEGUARDS, "max_retries": 2, "retry_window": 60, **safeguards},
        scan={"batch_size": BATCH, "batch_seconds": 5},
    )


def _library(tmp_path: Path, media_tree: Any) -> tuple[Path, list[str]]:
    root = tmp_path / "library"
    media_tree.build_tree(root, N_MEDIA, n_other=10)
    return root, sorted(media_tree.expected_media(root))


def _waiting_for_the_store(rt: scanguard.Runtime, url: str, job_id: int) -> dict[str, Any]:
    """The disk is full: the scan stopped, its pause waits for the store; the row keeps its checkpoint."""
    error = wait_for(lambda: rt.store_waits().get(job_id), 30, "the scan to stop on the full disk")
    assert "database or disk is full" in error, error
    row = job_row(url, job_id)
    assert row["status"] == "running", row  # the pause itself cannot be written yet
    assert row["checkpoint"] is not None, "some batches committed before the disk filled"
    assert row["restarts"] == 0, row
    return row


def test_a_full_disk_pauses_the_scan_and_a_resume_finishes_the_same_job_once_space_is_freed(
    tmp_path: Path,
    small_disk: SmallDisk,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """Without the feature the supervisor restarts the scan into the full disk and marks it failed."""
    url = f"sqlite:///{small_disk.where / 'scanguard.db'}"
    root, expected = _library(tmp_path, media_tree)
    rt = runtime_factory(_config(make_config, url))
    library = rt.add_library(root)
    small_disk.fill()
    job = rt.start_scan(library.id)

    row = _waiting_for_the_store(rt, url, job.id)
    # not a crash: no restart is spent and the job never fails while the disk stays full
    assert stays_false(lambda: job_row(url, job.id)["status"] != "running", 1.5)
    assert rt.metrics.registry.get_sample_value("scanguard_store_unavailable_total") == 1.0
    alerts = rt.check_health()["alerts"]
    assert any(a["alert"] == "store_unavailable" and a.get("job_ids") == [job.id] for a in alerts), alerts
    # the checkpoint is kept: exactly the files up to it are indexed, once each
    indexed = indexed_paths(url, library.id)
    assert len(indexed) == len(set(indexed)) == row["files_processed"] > 0
    assert set(indexed) < set(expected)

    small_disk.free()
    paused = rt.wait_for_job(job.id, ("paused", "completed", "failed"), timeout=30)
    assert (paused.status, paused.pause_reason) == ("paused", "store_unavailable"), paused
    assert paused.last_error is not None
    assert "database or disk is full" in paused.last_error, paused.last_error
    assert paused.checkpoint == row["checkpoint"]
    assert stays_false(lambda: rt.get_job(job.id).status != "paused", 1.0), "auto_resume_orphans is off"

    resumed = rt.resume_scan(job.id)
    assert resumed.id == job.id
    done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=30)
    assert done.status == "completed", done
    assert indexed_paths(url, library.id) == expected
    assert count(url, "SELECT COUNT(*) FROM scan_jobs") == 1, "the same job finished, not a new one"
    kinds = kinds_of(url, job.id)
    assert "supervisor.restart" not in kinds, kinds
    assert "job.failed" not in kinds, kinds
    assert_database_valid(url)


def test_with_auto_resume_the_scan_resumes_by_itself_when_space_comes_back(
    tmp_path: Path,
    small_disk: SmallDisk,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """auto_resume_orphans: once the store takes the pause again, the watchdog resumes the same job."""
    url = f"sqlite:///{small_disk.where / 'scanguard.db'}"
    root, expected = _library(tmp_path, media_tree)
    rt = runtime_factory(_config(make_config, url, auto_resume_orphans=True, watchdog_interval=0.1))
    library = rt.add_library(root)
    small_disk.fill()
    job = rt.start_scan(library.id)

    _waiting_for_the_store(rt, url, job.id)
    assert stays_false(lambda: job_row(url, job.id)["status"] == "failed", 1.5)

    small_disk.free()
    done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=30)
    assert done.status == "completed", done
    assert indexed_paths(url, library.id) == expected
    assert count(url, "SELECT COUNT(*) FROM scan_jobs") == 1
    assert trail(url, job.id, ["job.paused", "job.resumed", "job.completed"]) == [
        ("job.paused", "store_unavailable"),
        ("job.resumed", None),
        ("job.completed", None),
    ]
    assert_database_valid(url)


@pytest.mark.slow
def test_the_same_scan_command_resumes_a_job_a_full_disk_paused(
    tmp_path: Path, small_disk: SmallDisk, media_tree: Any
) -> None:
    """`scanguard scan` exits 'paused (store_unavailable)' on a full disk; run again, it finishes that job."""
    url = f"sqlite:///{small_disk.where / 'scanguard.db'}"
    root, expected = _library(tmp_path, media_tree)
    env = child_env(
        SCANGUARD_DATABASE_URL=url,
        SCANGUARD_SCAN_BATCH_SIZE=str(BATCH),
        SCANGUARD_SCAN_BATCH_SECONDS="5",
        SCANGUARD_SAFEGUARDS_RETRY_INTERVAL="0.05",
        SCANGUARD_LOG_LEVEL="warning",
    )
    command = [*scanguard_command(), "scan", str(root)]
    # a first, empty run creates the database before the disk is filled; the scan's own run has room
    # to add its library, start its job and commit a few batches
    empty = tmp_path / "empty"
    empty.mkdir()
    first = subprocess.run(
        [*scanguard_command(), "scan", str(empty)], check=False, env=env, capture_output=True, timeout=60
    )
    assert first.returncode == 0, first.stderr.decode()
    small_disk.fill(headroom=3 * HEADROOM)
    paused = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=60)
    assert "paused (store_unavailable)" in paused.stderr, paused.stderr
    assert "database or disk is full" in paused.stderr, paused.stderr
    assert paused.returncode == EXIT_PAUSED

    small_disk.free()
    again = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "resuming job" in again.stderr, again.stderr
    library_id = count(url, f"SELECT id FROM libraries WHERE path = '{root.resolve()}'")
    assert indexed_paths(url, library_id) == expected
    assert count(url, f"SELECT COUNT(*) FROM scan_jobs WHERE library_id = {library_id}") == 1
    assert_database_valid(url)


@pytest.mark.postgres
def test_a_database_server_going_away_mid_scan_pauses_the_job_and_it_resumes_when_the_server_is_back(
    tmp_path: Path,
    throwaway_pg: postgres.ThrowawayServer,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_tree: Any,
) -> None:
    """PostgreSQL stopped under a running scan: its batch fails (connection lost), the pause waits for the
    server, and once it is back the same job is paused store_unavailable, resumed and completed."""
    url = postgres.create_database(throwaway_pg.admin_url)
    root, expected = _library(tmp_path, media_tree)
    gate = ProcessorGate([expected[N_MEDIA // 2]])
    cfg = _config(make_config, url, auto_resume_orphans=True, watchdog_interval=0.1, lease_ttl=30)
    rt = runtime_factory(cfg, processor=gate)
    library = rt.add_library(root)
    try:
        job = rt.start_scan(library.id)
        _, release = gate.next_hit()  # the scan holds inside a batch, some batches committed before it
        throwaway_pg.halt()
        release.set()
        error = wait_for(lambda: rt.store_waits().get(job.id), 30, "the scan to stop on the lost server")
        assert "unavailable" in error, error
        assert stays_false(lambda: rt.store_waits().get(job.id) is None, 1.0), "it waits for the server"
    finally:
        gate.open_all()
        if not (throwaway_pg.root / "data" / "postmaster.pid").exists():
            throwaway_pg.boot()

    done = rt.wait_for_job(job.id, ("completed", "failed"), timeout=60)
    assert done.status == "completed", done
    assert indexed_paths(url, library.id) == expected
    assert count(url, "SELECT COUNT(*) FROM scan_jobs") == 1, "the same job finished, not a new one"
    assert trail(url, job.id, ["job.paused", "job.resumed", "job.failed"])[:2] == [
        ("job.paused", "store_unavailable"),
        ("job.resumed", None),
    ]
    assert "supervisor.restart" not in kinds_of(url, job.id)
    assert_database_valid(url)
