"""Scoped scans (issue 15, item 1; DESIGN §12): a job over some folders or files of a library walks only
them, keeps every guarantee of a full scan inside them, and touches nothing outside them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import scanguard
from tests.support.db import db_rows, missing_paths, present_paths
from tests.support.trees import build_tree, expected_media, media_path
from tests.support.waiting import QUIET_SAFEGUARDS, GatedFileSystem

pytestmark = pytest.mark.timeout(90)

ENDED = ("completed", "failed", "paused")


def _rows(url: str) -> dict[str, tuple[object, ...]]:
    """Every media row by path: what a scan may have changed."""
    rows = db_rows(url, "SELECT path, id, size, mtime, last_seen_at, missing_since FROM media_files")
    return {r[0]: tuple(r[1:]) for r in rows}


def _under(paths: set[str], folder: str) -> set[str]:
    return {p for p in paths if p.startswith(folder + "/")}


@pytest.fixture
def scanned(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> tuple[scanguard.Runtime, scanguard.Library, Path]:
    """A 400-file library (Artist 000..003), scanned once in full."""
    root = tmp_path / "lib"
    build_tree(root, 400, 20)
    rt = runtime_factory(make_config(scan={"batch_size": 25}))
    library = rt.add_library(root)
    job = rt.wait_for_job(rt.start_scan(library.id).id, ENDED, timeout=30)
    assert job.status == "completed", job
    assert present_paths(db_url, library.id) == expected_media(root)
    return rt, library, root


def _change_everywhere(root: Path) -> dict[str, list[str]]:
    """Add, grow and delete files inside Artist 001 and outside it; what was done where."""
    inside_added = ["Artist 001/Album 03/99 - Bonus.flac", "Artist 001/New/01 - Fresh.mp3"]
    outside_added = ["Artist 000/Album 00/99 - Bonus.flac", "Artist 003/New/01 - Fresh.mp3", "Zzz.ogg"]
    for rel in inside_added + outside_added:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"new" * 7)
    inside_grown, outside_grown = [media_path(150)], [media_path(50), media_path(250)]
    for rel in inside_grown + outside_grown:
        with (root / rel).open("ab") as fh:
            fh.write(b"more")
    inside_deleted = [media_path(i) for i in (101, 199)]
    outside_deleted = [media_path(i) for i in (0, 201, 399)]
    for rel in inside_deleted + outside_deleted:
        os.remove(root / rel)
    return {
        "inside_added": inside_added,
        "outside_added": outside_added,
        "inside_grown": inside_grown,
        "outside_grown": outside_grown,
        "inside_deleted": inside_deleted,
        "outside_deleted": outside_deleted,
    }


def test_a_folder_scope_applies_the_changes_inside_it_and_touches_nothing_outside(
    db_url: str, scanned: tuple[scanguard.Runtime, scanguard.Library, Path]
) -> None:
    rt, library, root = scanned
    before = _rows(db_url)
    changes = _change_everywhere(root)

    started = rt.start_scan(library.id, paths=["Artist 001/"])
    job = rt.wait_for_job(started.id, ENDED, timeout=30)

    assert job.status == "completed", job
    assert (started.scope, started.trigger) == (("Artist 001",), "user")
    assert rt.get_job(job.id).to_dict()["scope"] == ["Artist 001"]
    on_disk = _under(expected_media(root), "Artist 001")
    assert job.files_found == len(on_disk), "only the scope was walked"
    assert job.total_estimate == len(on_disk), "the counting pass counted only the scope"
    assert _under(present_paths(db_url, library.id), "Artist 001") == on_disk
    assert missing_paths(db_url, library.id) == set(changes["inside_deleted"])
    assert (job.files_changed, job.files_removed) == (1, 2)
    after = _rows(db_url)
    outside = {p: row for p, row in before.items() if not p.startswith("Artist 001/")}
    assert {p: after[p] for p in outside} == outside, "no row outside the scope was written"
    assert not set(changes["outside_added"]) & set(after), "nothing outside the scope was indexed"

    # a full scan afterwards sees the rest
    full = rt.wait_for_job(rt.start_scan(library.id).id, ENDED, timeout=30)
    assert full.status == "completed", full
    assert present_paths(db_url, library.id) == expected_media(root)
    assert missing_paths(db_url, library.id) == set(changes["inside_deleted"] + changes["outside_deleted"])


def test_a_file_scope_and_a_vanished_folder_scope_mark_exactly_their_rows(
    db_url: str, scanned: tuple[scanguard.Runtime, scanguard.Library, Path]
) -> None:
    rt, library, root = scanned
    one = media_path(120)
    with (root / one).open("ab") as fh:
        fh.write(b"grown")
    neighbour = media_path(121)  # same folder, changed too, but not in the scope
    with (root / neighbour).open("ab") as fh:
        fh.write(b"grown")
    gone = "Artist 002/Album 04"
    gone_rows = _under(present_paths(db_url, library.id), gone)
    shutil.rmtree(root / gone)
    before = _rows(db_url)

    job = rt.wait_for_job(rt.start_scan(library.id, paths=[one, gone]).id, ENDED, timeout=30)

    assert job.status == "completed", job
    assert job.scope == tuple(sorted([gone, one]))
    assert (job.files_found, job.files_changed, job.files_removed) == (1, 1, len(gone_rows))
    assert missing_paths(db_url, library.id) == gone_rows, "a deleted scope folder's rows are missing"
    after = _rows(db_url)
    assert after[neighbour] == before[neighbour], "the unscoped neighbour was not written"
    assert after[one][1] == os.stat(root / one).st_size


@pytest.mark.parametrize(
    "bad",
    ["..", "../elsewhere", "Artist 000/../../x", "Artist 000/../Artist 001", "/etc", "/", "", "a\x00b"],
)
def test_a_scope_escaping_the_root_is_refused_and_starts_nothing(
    bad: str, db_url: str, scanned: tuple[scanguard.Runtime, scanguard.Library, Path]
) -> None:
    rt, library, _root = scanned
    jobs = rt.list_jobs(library_id=library.id).total

    with pytest.raises(scanguard.InvalidScope) as caught:
        rt.start_scan(library.id, paths=["Artist 000", bad])

    assert (caught.value.status, caught.value.code) == (400, "invalid_scope")
    assert rt.list_jobs(library_id=library.id).total == jobs, "no job was created"
    assert rt.current_jobs() == ()


def test_absolute_and_redundant_scope_paths_are_normalized(
    scanned: tuple[scanguard.Runtime, scanguard.Library, Path],
) -> None:
    rt, library, root = scanned
    paths = [
        str(root / "Artist 002" / "Album 01"),
        "./Artist 001/",
        "Artist 001/Album 03/x.flac",  # inside another scope path
        "Artist 002/Album 01",  # a duplicate
        "Artist 000/./Album 09//",
    ]
    job = rt.start_scan(library.id, paths=paths, trigger="watch")
    assert job.scope == ("Artist 000/Album 09", "Artist 001", "Artist 002/Album 01")
    assert job.trigger == "watch"
    assert rt.wait_for_job(job.id, ENDED, timeout=30).status == "completed"
    whole = rt.start_scan(library.id, paths=[str(root)])
    assert whole.scope == (), "the root itself is the whole library"
    assert rt.wait_for_job(whole.id, ENDED, timeout=30).status == "completed"
    with pytest.raises(scanguard.BadRequest):
        rt.start_scan(library.id, trigger="cron")


def test_a_scoped_start_on_a_busy_library_is_refused_with_the_job_in_the_way(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 200, 0)
    fs = GatedFileSystem(root / "Artist 001")
    rt = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS), fs=fs)
    library = rt.add_library(root)
    running = rt.start_scan(library.id)
    assert fs.reached.wait(15)
    try:
        with pytest.raises(scanguard.LibraryBusy) as caught:
            rt.start_scan(library.id, paths=["Artist 000"])
        assert caught.value.job_id == running.id
    finally:
        fs.release.set()
    assert rt.wait_for_job(running.id, ENDED, timeout=30).status == "completed"


def test_a_scoped_scan_paused_and_resumed_mid_walk_loses_and_doubles_nothing(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 600, 0)
    # one walker: the gate holds the walk itself, after the batches before it committed
    config = make_config(scan={"batch_size": 10, "walkers": 1}, safeguards=QUIET_SAFEGUARDS)
    rt = runtime_factory(config)
    library = rt.add_library(root)
    assert rt.wait_for_job(rt.start_scan(library.id).id, ENDED, timeout=30).status == "completed"
    # the scope changes everywhere; outside it too
    for i in range(600):
        os.utime(root / media_path(i), ns=(1, 1_000_000_000 * (i + 1)))
    rt.stop()
    fs = GatedFileSystem(root / "Artist 002" / "Album 05")
    rt = runtime_factory(config, fs=fs)
    scope = ["Artist 001", "Artist 002", "Artist 009"]  # the last one does not exist

    job = rt.start_scan(library.id, paths=scope)
    assert fs.reached.wait(15), "the walk reached the middle of the scope"
    paused = rt.pause_scan(job.id)
    fs.release.set()
    paused = rt.wait_for_job(job.id, ("paused",), timeout=30)
    assert 0 < paused.files_processed < 200, paused
    assert paused.checkpoint is not None
    assert paused.checkpoint.startswith(("Artist 001/", "Artist 002/"))
    resumed = rt.resume_scan(job.id)
    assert resumed.scope == ("Artist 001", "Artist 002", "Artist 009")
    done = rt.wait_for_job(job.id, ENDED, timeout=30)

    assert done.status == "completed", done
    assert done.files_processed == done.files_found == 200, "every scope file once: none lost, none doubled"
    assert done.files_changed == 200
    mtimes = dict(db_rows(db_url, f"SELECT path, mtime FROM media_files WHERE library_id = {library.id}"))
    assert len(mtimes) == 600
    for i in range(600):
        rel = media_path(i)
        fresh = mtimes[rel] == pytest.approx(float(i + 1))
        assert fresh == (100 <= i < 300), f"{rel}: written iff in the scope"
    assert missing_paths(db_url, library.id) == set()


def test_an_emptied_root_pauses_a_scoped_scan_instead_of_marking_its_scopemissing_paths(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 300, 0)
    rt = runtime_factory(make_config(scan={"batch_size": 25}))
    library = rt.add_library(root)
    assert rt.wait_for_job(rt.start_scan(library.id).id, ENDED, timeout=30).status == "completed"
    # the drive is unmounted: its mount point stays, empty
    shutil.move(str(root), str(tmp_path / "elsewhere"))
    root.mkdir()

    job = rt.wait_for_job(rt.start_scan(library.id, paths=["Artist 001"]).id, ENDED, timeout=30)

    assert (job.status, job.pause_reason) == ("paused", "root_unavailable"), job
    assert "root is empty" in (job.last_error or "")
    assert missing_paths(db_url, library.id) == set(), "nothing was marked missing"
    # the drive is back: the resumed scoped scan completes on the unchanged index
    root.rmdir()
    shutil.move(str(tmp_path / "elsewhere"), str(root))
    rt.resume_scan(job.id)
    done = rt.wait_for_job(job.id, ENDED, timeout=30)
    assert done.status == "completed", done
    assert present_paths(db_url, library.id) == expected_media(root)
    assert missing_paths(db_url, library.id) == set()
