"""Moves keep identity (issue 15, item 2; DESIGN §12): a file renamed or moved inside its library keeps its
row — id, meta, first_seen_at, error — is not processed again, and is told as one `file.moved` event;
a hard link is a new file."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import scanguard
from tests.support.db import db_exec, db_rows
from tests.support.trees import build_tree, expected_media, media_path
from tests.support.waiting import QUIET_SAFEGUARDS, GatedFileSystem

pytestmark = pytest.mark.timeout(90)

ENDED = ("completed", "failed", "paused")


class CountingProcessor:
    """A host processor that counts its calls per path and returns a meta naming the call."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, ctx: scanguard.FileContext) -> dict[str, Any]:
        with self._lock:
            self.calls[ctx.path] += 1
            return {"read_as": ctx.path}


def _rows(url: str, library_id: int) -> dict[str, tuple[Any, ...]]:
    """path → (id, first_seen_at, meta, error, missing_since, device, inode)."""
    rows = db_rows(
        url,
        "SELECT path, id, first_seen_at, meta, error, missing_since, device, inode FROM media_files"
        f" WHERE library_id = {library_id}",
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def _moved_events(rt: scanguard.Runtime, job_id: int) -> list[dict[str, Any]]:
    return [dict(e.data) for e in rt.events(job_id=job_id, kind="file.moved", limit=10_000)]


def _scan(rt: scanguard.Runtime, library_id: int, **kwargs: Any) -> scanguard.Job:
    job = rt.wait_for_job(rt.start_scan(library_id, **kwargs).id, ENDED, timeout=60)
    assert job.status == "completed", job
    return job


def _renamed(before: dict[str, tuple[Any, ...]], old: str, new: str) -> dict[str, str]:
    """old path → new path of every row under folder `old` once the folder is called `new`."""
    return {p: new + p[len(old) :] for p in before if p.startswith(old + "/")}


@pytest.fixture
def library(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> tuple[scanguard.Runtime, scanguard.Library, Path, CountingProcessor]:
    """A 500-file library scanned once with a counting processor, in batches of 10."""
    root = tmp_path / "lib"
    build_tree(root, 500, 10)
    processor = CountingProcessor()
    rt = runtime_factory(make_config(scan={"batch_size": 10}), processor=processor)
    lib = rt.add_library(root)
    _scan(rt, lib.id)
    assert processor.calls.total() == len(expected_media(root))
    return rt, lib, root, processor


def test_folders_renamed_while_down_keep_their_rows_in_either_walk_order(
    db_url: str, library: tuple[scanguard.Runtime, scanguard.Library, Path, CountingProcessor]
) -> None:
    rt, lib, root, processor = library
    before = _rows(db_url, lib.id)
    # the new name sorts after the old one (its old rows are walked, and vanish, first) ...
    later = _renamed(before, "Artist 000/Album 01", "Zed/Album 01")
    # ... and before it (the new paths are walked before the old range is reached)
    earlier = _renamed(before, "Artist 003/Album 02", "Aardvark/Album 02")
    for old, new in (("Artist 000/Album 01", "Zed/Album 01"), ("Artist 003/Album 02", "Aardvark/Album 02")):
        (root / new).parent.mkdir(parents=True, exist_ok=True)
        (root / old).rename(root / new)
    moves = {**later, **earlier}
    assert len(later) == len(earlier) == 10
    processor.calls.clear()

    job = _scan(rt, lib.id)

    after = _rows(db_url, lib.id)
    assert set(after) == expected_media(root), "no row left at an old path, none doubled"
    for old, new in moves.items():
        assert after[new] == before[old], f"{old} → {new} kept its id, meta, first_seen_at and identity"
    assert processor.calls.total() == 0, "a moved file is not processed again"
    assert job.files_moved == len(moves)
    assert job.to_dict()["files_moved"] == len(moves)
    assert (job.files_changed, job.files_removed) == (0, 0)
    events = _moved_events(rt, job.id)
    assert sorted((e["from"], e["to"]) for e in events) == sorted(moves.items())
    assert all(set(e) == {"from", "to"} for e in events)

    again = _scan(rt, lib.id)
    assert (again.files_moved, again.files_changed) == (0, 0), "the next scan finds nothing to do"


def test_a_hard_link_is_a_new_file_and_its_original_keeps_its_row(
    db_url: str, library: tuple[scanguard.Runtime, scanguard.Library, Path, CountingProcessor]
) -> None:
    rt, lib, root, processor = library
    before = _rows(db_url, lib.id)
    original = media_path(233)
    assert original in before
    os.link(root / original, root / "Artist 000/linked.opus")
    os.link(root / original, root / "Zed linked.opus")
    processor.calls.clear()

    job = _scan(rt, lib.id)

    after = _rows(db_url, lib.id)
    assert after[original] == before[original]
    new = {p: after[p] for p in ("Artist 000/linked.opus", "Zed linked.opus")}
    assert len({row[0] for row in new.values()} | {before[original][0]}) == 3, "three rows, three ids"
    assert processor.calls == Counter({"Artist 000/linked.opus": 1, "Zed linked.opus": 1})
    assert job.files_moved == 0
    assert _moved_events(rt, job.id) == []


def test_a_scoped_scan_of_the_new_side_moves_rows_from_outside_its_scope(
    db_url: str, library: tuple[scanguard.Runtime, scanguard.Library, Path, CountingProcessor]
) -> None:
    rt, lib, root, processor = library
    before = _rows(db_url, lib.id)
    moves = _renamed(before, "Artist 001/Album 07", "Artist 004/Album 07 (remaster)")
    (root / "Artist 001/Album 07").rename(root / "Artist 004/Album 07 (remaster)")
    processor.calls.clear()

    job = _scan(rt, lib.id, paths=["Artist 004/Album 07 (remaster)"])

    after = _rows(db_url, lib.id)
    assert job.files_moved == len(moves) == 10
    for old, new in moves.items():
        assert after[new] == before[old]
        assert old not in after
    assert processor.calls.total() == 0
    untouched = {p: r for p, r in before.items() if p not in moves}
    assert {p: after[p] for p in untouched} == untouched


def test_a_file_marked_missing_that_comes_back_elsewhere_is_its_old_row_present_again(
    db_url: str,
    tmp_path: Path,
    library: tuple[scanguard.Runtime, scanguard.Library, Path, CountingProcessor],
) -> None:
    rt, lib, root, processor = library
    rel = media_path(499)
    before = _rows(db_url, lib.id)[rel]
    shutil.move(str(root / rel), str(tmp_path / "trash.flac"))  # a rename: mtime and inode stay
    assert _scan(rt, lib.id).files_removed == 1
    assert _rows(db_url, lib.id)[rel][4] is not None, "marked missing"
    restored = "Restored/" + rel.rsplit("/", 1)[1]
    (root / "Restored").mkdir()
    shutil.move(str(tmp_path / "trash.flac"), str(root / restored))
    processor.calls.clear()

    job = _scan(rt, lib.id)

    rows = _rows(db_url, lib.id)
    assert rel not in rows
    assert rows[restored][:4] == before[:4], "same id, first_seen_at, meta and error"
    assert rows[restored][4] is None, "present again"
    assert (job.files_moved, processor.calls.total()) == (1, 0)


def test_rows_from_before_identities_get_them_on_the_next_scan_and_then_move(
    db_url: str, library: tuple[scanguard.Runtime, scanguard.Library, Path, CountingProcessor]
) -> None:
    rt, lib, root, processor = library
    db_exec(db_url, "UPDATE media_files SET device = NULL, inode = NULL")  # as migration 0005 left them
    before = _rows(db_url, lib.id)
    processor.calls.clear()

    filled = _scan(rt, lib.id)

    after = _rows(db_url, lib.id)
    assert (filled.files_changed, processor.calls.total()) == (0, 0), "an identity fill is no change"
    for path, row in after.items():
        st = os.stat(root / path)
        assert row[5:] == (st.st_dev, st.st_ino), path
        assert row[:5] == before[path][:5]
    (root / "Artist 002").rename(root / "Artist 002 (old)")
    moved = _scan(rt, lib.id)
    assert moved.files_moved == 100
    assert processor.calls.total() == 0


def test_a_scan_with_moves_paused_and_resumed_mid_walk_moves_each_file_once(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    root = tmp_path / "lib"
    build_tree(root, 600, 0)
    config = make_config(scan={"batch_size": 10}, safeguards=QUIET_SAFEGUARDS)
    rt = runtime_factory(config)
    lib = rt.add_library(root)
    _scan(rt, lib.id)
    before = _rows(db_url, lib.id)
    rt.stop()
    # moves both ways around the place the walk is held at (Artist 003)
    moves = {
        **_renamed(before, "Artist 000", "Artist 005/from 000"),
        **_renamed(before, "Artist 004/Album 02", "Artist 001/Album 02 (b)"),
        **_renamed(before, "Artist 002/Album 00", "Artist 003/Album 09/sub"),
    }
    for old, new in (
        ("Artist 000", "Artist 005/from 000"),
        ("Artist 004/Album 02", "Artist 001/Album 02 (b)"),
        ("Artist 002/Album 00", "Artist 003/Album 09/sub"),
    ):
        (root / old).rename(root / new)
    fs = GatedFileSystem(root / "Artist 003" / "Album 05")
    rt = runtime_factory(config, fs=fs)

    job = rt.start_scan(lib.id)
    assert fs.reached.wait(15), "the walk reached Artist 003"
    rt.pause_scan(job.id)
    fs.release.set()
    paused = rt.wait_for_job(job.id, ("paused",), timeout=30)
    assert 0 < paused.files_moved < len(moves), paused
    rt.resume_scan(job.id)
    done = rt.wait_for_job(job.id, ENDED, timeout=60)

    assert done.status == "completed", done
    after = _rows(db_url, lib.id)
    assert set(after) == expected_media(root)
    for old, new in moves.items():
        assert after[new] == before[old], f"{old} → {new}"
    assert done.files_moved == len(moves) == 120
    events = _moved_events(rt, job.id)
    assert sorted((e["from"], e["to"]) for e in events) == sorted(moves.items()), "one event per file"
    assert done.files_removed == 0


def test_a_move_still_committing_when_the_next_stretch_reads_its_old_path_is_not_marked_vanished(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """The walk reads the next stretch's rows while the previous batch commits: that read still shows the
    moved rows at their old paths, and they must not be marked vanished by the later batch."""
    root = tmp_path / "lib"
    build_tree(root, 60, 0)
    rt = runtime_factory(make_config(scan={"batch_size": 3}, safeguards=QUIET_SAFEGUARDS))
    lib = rt.add_library(root)
    _scan(rt, lib.id)
    before = _rows(db_url, lib.id)
    # the new folder sorts just before the old one: the moves' batches come right before its range
    moves = _renamed(before, "Artist 000/Album 02", "Artist 000/Album 01b")
    (root / "Artist 000/Album 02").rename(root / "Artist 000/Album 01b")

    def slow_batches(op: str, stage: str) -> None:
        if op == "commit_batch" and stage == "before_commit":
            time.sleep(0.2)  # the fault injected: a slow database, so each read runs ahead of a commit

    rt.store.set_fault_hook(slow_batches)
    job = _scan(rt, lib.id)
    rt.store.set_fault_hook(None)

    after = _rows(db_url, lib.id)
    for old, new in moves.items():
        assert after[new] == before[old], f"{old} → {new} is present, with its row"
    assert (job.files_moved, job.files_removed) == (10, 0)
