"""Delete while a scan runs: the job and exactly its files go, and its late batch writes nothing (issue 2, item 3)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pykka
import pytest

import scanguard
from scanguard.actors.scan_job import ScanActor
from tests.support.db import db_rows, db_value
from tests.support.trees import build_tree, expected_media, media_path
from tests.support.waiting import QUIET_SAFEGUARDS, ProcessorGate, wait_for

pytestmark = pytest.mark.timeout(60)


def _files(url: str, library_id: int) -> list[tuple[str, int | None]]:
    return sorted(
        (str(p), j)
        for p, j in db_rows(url, f"SELECT path, scan_job_id FROM media_files WHERE library_id = {library_id}")
    )


def test_deleting_a_running_scan_removes_its_row_and_exactly_the_files_it_discovered_and_fences_its_last_batch(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 200, 10)
    gate = ProcessorGate()
    rt = runtime_factory(make_config(scan={"batch_size": 10}, safeguards=QUIET_SAFEGUARDS), processor=gate)
    library = rt.add_library(root)
    first = rt.start_scan(library.id)
    assert rt.wait_for_job(first.id, ("completed", "failed"), timeout=30).status == "completed"
    before = _files(db_url, library.id)
    assert {j for _, j in before} == {first.id}

    # new files sort after the old ones; the second scan is held inside a batch deep among them
    build_tree(root / "Zed", 120, 0, hidden=False, symlinks=False)
    new = sorted(p for p in expected_media(root) if p.startswith("Zed/"))
    held = new[75]
    gate = ProcessorGate([held])
    rt.stop()
    rt = runtime_factory(make_config(scan={"batch_size": 10}, safeguards=QUIET_SAFEGUARDS), processor=gate)
    second = rt.start_scan(library.id)
    try:
        path, release = gate.next_hit()
        assert path == held
        (zombie,) = pykka.ActorRegistry.get_by_class(ScanActor)
        # the scan commits every file before the held one (its processing is done) and none after it
        discovered = new.index(held)
        wait_for(
            lambda: (
                int(db_value(db_url, f"SELECT COUNT(*) FROM media_files WHERE scan_job_id = {second.id}"))
                == discovered
            ),
            15,
            "the files before the held one to be committed",
        )

        deleted = rt.delete_job(second.id)

        assert deleted.deleted_job_id == second.id
        assert deleted.media_files_removed == discovered
        with pytest.raises(scanguard.NotFound):
            rt.get_job(second.id)
        assert db_rows(db_url, f"SELECT id FROM scan_jobs WHERE id = {second.id}") == []
        assert _files(db_url, library.id) == before, "exactly the files the deleted job discovered are gone"

        release.set()  # the held batch goes on to its commit, under a token the delete made stale
        assert zombie.actor_stopped.wait(15), "the deleted job's scan actor stopped"
    finally:
        gate.open_all()
    rt.store.ping()  # the store has handled everything the zombie sent before it stopped
    assert _files(db_url, library.id) == before, "the zombie batch wrote nothing"
    assert db_rows(db_url, f"SELECT id FROM scan_jobs WHERE id = {second.id}") == []
    late = db_rows(db_url, f"SELECT kind FROM events WHERE job_id = {second.id} ORDER BY id")
    assert late[-1] == ("job.deleted",), f"nothing recorded for the job after its delete: {late}"
    assert db_value(db_url, f"SELECT COUNT(*) FROM media_files WHERE scan_job_id = {second.id}") == 0

    third = rt.start_scan(library.id)
    done = rt.wait_for_job(third.id, ("completed", "failed"), timeout=30)
    assert done.status == "completed", done
    after = _files(db_url, library.id)
    assert [p for p, _ in after] == sorted(expected_media(root))
    assert {p for p, j in after if j == third.id} == set(new)
    assert done.files_processed == len(expected_media(root))


def test_deleting_a_paused_job_removes_it_and_frees_the_library(
    db_url: str, tmp_path: Path, runtime_factory: Callable[..., scanguard.Runtime]
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 40, 0)
    gate = ProcessorGate([media_path(20)])
    rt = runtime_factory(processor=gate)
    library = rt.add_library(root)
    job = rt.start_scan(library.id)
    try:
        _, release = gate.next_hit()
        rt.pause_scan(job.id)
        release.set()
    finally:
        gate.open_all()
    deleted = rt.delete_job(job.id)
    assert deleted.deleted_job_id == job.id
    assert db_value(db_url, f"SELECT COUNT(*) FROM media_files WHERE library_id = {library.id}") == 0
    assert db_rows(db_url, "SELECT id FROM scan_jobs") == []
    again = rt.start_scan(library.id)
    assert rt.wait_for_job(again.id, ("completed", "failed"), timeout=30).status == "completed"
    assert len(db_rows(db_url, "SELECT path FROM media_files")) == len(expected_media(root))
