"""Rescans: unchanged files write nothing, changes converge to the tree, an unmounted root purges nothing
(issue 2, item 4)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import scanguard
from tests.support.db import db_rows, install_write_counter, media_writes, missing_paths, present_paths
from tests.support.trees import build_tree, expected_media, media_path
from tests.support.waiting import QUIET_SAFEGUARDS, GatedFileSystem

pytestmark = pytest.mark.timeout(60)


def _scan(rt: scanguard.Runtime, library_id: int) -> scanguard.Job:
    job = rt.start_scan(library_id)
    return rt.wait_for_job(job.id, ("completed", "failed", "paused"), timeout=30)


def _media_table(url: str) -> list[tuple[object, ...]]:
    return db_rows(url, "SELECT * FROM media_files ORDER BY id")


def _held_rescan(
    url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    n_media: int,
    held: str,
) -> tuple[scanguard.Runtime, scanguard.Library, scanguard.Job, GatedFileSystem, list[tuple[object, ...]]]:
    """A library scanned once, then a rescan whose walk waits before listing `held` (relative to the root).

    Returns the new runtime, the library, the held job, the gate, and the media table after the first scan.
    """
    root = tmp_path / "lib"
    build_tree(root, n_media, 10)
    config = make_config(scan={"batch_size": 25}, safeguards=QUIET_SAFEGUARDS)
    rt = runtime_factory(config)
    library = rt.add_library(root)
    assert _scan(rt, library.id).status == "completed"
    table = _media_table(url)
    rt.stop()
    fs = GatedFileSystem(str(root / held))
    rt = runtime_factory(config, fs=fs)
    job = rt.start_scan(library.id)
    assert fs.reached.wait(15), f"the walk reached {held or 'the root'}"
    return rt, library, job, fs, table


def test_rescanning_an_unchanged_tree_writes_no_media_row(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 300, 30)
    rt = runtime_factory(make_config(scan={"batch_size": 25}))
    library = rt.add_library(root)
    first = _scan(rt, library.id)
    assert first.status == "completed"
    assert first.bytes_processed > 0
    install_write_counter(db_url)
    table = _media_table(db_url)

    again = _scan(rt, library.id)

    assert again.status == "completed", again
    assert media_writes(db_url) == 0, "an unchanged file is skipped without any write"
    assert _media_table(db_url) == table
    assert (again.files_changed, again.bytes_processed, again.files_removed) == (0, 0, 0)
    assert again.files_processed == again.files_found == len(expected_media(root))


def test_after_adding_changing_and_deleting_files_a_rescan_matches_the_tree_again(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 300, 30)
    rt = runtime_factory(make_config(scan={"batch_size": 25}))
    library = rt.add_library(root)
    assert _scan(rt, library.id).status == "completed"
    install_write_counter(db_url)

    added = ["Artist 000/Album 00/00 - Intro.flac", "Artist 001/New Album/01 - New.MP3", "Zzz/Last.ogg"]
    for rel in added:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"new" * 10)
    grown = [media_path(i) for i in (3, 50, 151)]
    for rel in grown:
        with (root / rel).open("ab") as fh:
            fh.write(b"more")
    touched = media_path(77)  # same size, new mtime
    st = os.stat(root / touched)
    os.utime(root / touched, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    deleted = [media_path(i) for i in (0, 99, 100, 299)]
    for rel in deleted:
        os.remove(root / rel)
    shutil.rmtree(root / "Artist 002" / "Album 05")
    deleted += [media_path(i) for i in range(250, 260)]

    job = _scan(rt, library.id)

    assert job.status == "completed", job
    assert present_paths(db_url, library.id) == expected_media(root)
    assert missing_paths(db_url, library.id) == set(deleted)
    assert job.files_changed == len(grown) + 1
    assert job.files_removed == len(deleted)
    sizes = dict(db_rows(db_url, f"SELECT path, size FROM media_files WHERE library_id = {library.id}"))
    for rel in grown + added:
        assert sizes[rel] == os.stat(root / rel).st_size, rel
    mtimes = dict(db_rows(db_url, f"SELECT path, mtime FROM media_files WHERE library_id = {library.id}"))
    assert mtimes[touched] == pytest.approx(os.stat(root / touched).st_mtime)
    assert job.bytes_processed == sum(os.stat(root / rel).st_size for rel in grown + added + [touched])

    # a missing file that comes back is present again; nothing else is written
    writes = media_writes(db_url)
    (root / deleted[0]).parent.mkdir(parents=True, exist_ok=True)
    (root / deleted[0]).write_bytes(b"back")
    job = _scan(rt, library.id)
    assert job.status == "completed", job
    assert present_paths(db_url, library.id) == expected_media(root)
    assert missing_paths(db_url, library.id) == set(deleted[1:])
    assert media_writes(db_url) == writes + 1
    assert job.files_removed == 0, "files already missing are not counted again"


@pytest.mark.parametrize("how", ["renamed", "deleted"])
def test_a_root_that_vanishes_when_the_walk_starts_pauses_the_job_and_marks_nothingmissing_paths(
    how: str,
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    root = tmp_path / "lib"
    # the walk's first listing of the root waits for the unmount
    rt, library, job, fs, table = _held_rescan(db_url, tmp_path, make_config, runtime_factory, 120, "")
    moved = tmp_path / "moved"
    root.rename(moved)
    if how == "deleted":
        shutil.rmtree(moved)
    fs.release.set()

    paused = rt.wait_for_job(job.id, ("completed", "failed", "paused"), timeout=30)

    assert (paused.status, paused.pause_reason) == ("paused", "root_unavailable"), paused
    assert _media_table(db_url) == table, "nothing marked missing, nothing written"
    with pytest.raises(scanguard.LibraryRootUnavailable):
        rt.resume_scan(job.id)
    if how == "renamed":
        moved.rename(root)  # remounted: the paused job resumes and completes on the unchanged index
        rt.resume_scan(job.id)
        done = rt.wait_for_job(job.id, ("completed", "failed", "paused"), timeout=30)
        assert done.status == "completed", done
        assert present_paths(db_url, library.id) == expected_media(root)
        assert missing_paths(db_url, library.id) == set()


def test_a_root_that_vanishes_in_the_middle_of_the_walk_pauses_the_job_and_marks_nothingmissing_paths(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    root = tmp_path / "lib"
    rt, library, job, fs, _ = _held_rescan(db_url, tmp_path, make_config, runtime_factory, 400, "Artist 001")
    root.rename(tmp_path / "moved")
    fs.release.set()

    paused = rt.wait_for_job(job.id, ("completed", "failed", "paused"), timeout=30)

    assert (paused.status, paused.pause_reason) == ("paused", "root_unavailable"), paused
    assert missing_paths(db_url, library.id) == set(), "nothing marked missing"
    assert present_paths(db_url, library.id) == {
        r[0] for r in db_rows(db_url, "SELECT path FROM media_files")
    }

    (tmp_path / "moved").rename(root)
    rt.resume_scan(job.id)
    done = rt.wait_for_job(job.id, ("completed", "failed", "paused"), timeout=30)
    assert done.status == "completed", f"remounted, the job completes: {done}"
    assert present_paths(db_url, library.id) == expected_media(root)
    assert missing_paths(db_url, library.id) == set()


def test_a_library_that_is_suddenly_mostly_empty_pauses_instead_of_marking_everythingmissing_paths(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """More than half the files vanish (an unmounted drive under a kept mount point): pause, purge nothing;
    once the files are back, resuming the job completes it with the index intact."""
    root = tmp_path / "lib"
    build_tree(root, 300, 10)
    rt = runtime_factory(make_config(scan={"batch_size": 25}, safeguards=QUIET_SAFEGUARDS))
    library = rt.add_library(root)
    assert _scan(rt, library.id).status == "completed"
    before = present_paths(db_url, library.id)
    for artist in ("Artist 001", "Artist 002"):
        (root / artist).rename(tmp_path / artist)  # two thirds of the files

    job = _scan(rt, library.id)

    assert (job.status, job.pause_reason) == ("paused", "root_unavailable"), job
    assert missing_paths(db_url, library.id) == set(), "nothing marked missing"
    assert present_paths(db_url, library.id) == before
    assert job.last_error
    assert "vanished" in job.last_error

    for artist in ("Artist 001", "Artist 002"):
        (tmp_path / artist).rename(root / artist)
    rt.resume_scan(job.id)
    done = rt.wait_for_job(job.id, ("completed", "failed", "paused"), timeout=30)
    assert done.status == "completed", f"the files are back: the job completes: {done}"
    assert present_paths(db_url, library.id) == before == expected_media(root)
    assert missing_paths(db_url, library.id) == set()
    assert done.files_processed == done.files_found == len(before)
    assert done.files_removed == 0


def _count_commits(rt: scanguard.Runtime) -> list[str]:
    commits: list[str] = []

    def hook(operation: str, stage: str) -> None:
        if operation == "commit_batch" and stage == "before_commit":
            commits.append(operation)

    rt.store.set_fault_hook(hook)
    return commits


def test_an_unchanged_rescan_commits_its_counters_when_a_commit_is_due_not_once_a_batch(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """Twelve stretches of 25 unchanged files write nothing but counters: they ride on one commit (the
    end's, as no heartbeat is due within 30 s); a changed file commits its stretch, counters exact."""
    root = tmp_path / "lib"
    build_tree(root, 300, 30)
    rt = runtime_factory(
        make_config(scan={"batch_size": 25, "batch_seconds": 30}, safeguards=QUIET_SAFEGUARDS)
    )
    library = rt.add_library(root)
    first = _scan(rt, library.id)
    assert first.status == "completed"
    commits = _count_commits(rt)

    again = _scan(rt, library.id)

    assert again.status == "completed", again
    assert len(commits) == 1, f"{len(commits)} commits for a rescan that changed nothing"
    assert again.files_found == again.files_processed == 300
    assert again.files_skipped == first.files_skipped > 0
    assert again.progress == 100.0
    assert again.checkpoint is None or again.checkpoint == max(expected_media(root))

    with (root / media_path(150)).open("ab") as fh:
        fh.write(b"more")
    commits.clear()
    changed = _scan(rt, library.id)
    assert changed.status == "completed", changed
    assert len(commits) == 2, "the changed stretch (with what came before it), then the rest at the end"
    assert (changed.files_found, changed.files_changed) == (300, 1)


def test_a_rescan_paused_while_it_carries_uncommitted_counters_resumes_to_exact_counts(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """The stretches walked before the pause were not committed, nor was their checkpoint: the resume walks
    them again and counts each file once."""
    root = tmp_path / "lib"
    build_tree(root, 400, 10)
    config = make_config(scan={"batch_size": 25, "batch_seconds": 30}, safeguards=QUIET_SAFEGUARDS)
    rt = runtime_factory(config)
    library = rt.add_library(root)
    assert _scan(rt, library.id).status == "completed"
    rt.stop()
    fs = GatedFileSystem(str(root / "Artist 002"))
    rt = runtime_factory(config, fs=fs)
    job = rt.start_scan(library.id)
    assert fs.reached.wait(15), "the walk reached Artist 002"
    assert rt.get_job(job.id).files_found == 0, "the stretches before the gate are carried, not committed"

    rt.pause_scan(job.id)
    fs.release.set()
    paused = rt.wait_for_job(job.id, ("paused",), timeout=30)
    rt.resume_scan(paused.id)
    done = rt.wait_for_job(job.id, ("completed", "failed", "paused"), timeout=30)

    assert done.status == "completed", done
    assert done.files_found == done.files_processed == len(expected_media(root)) == 400
    assert done.files_changed == 0
