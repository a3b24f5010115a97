"""The watch tree on real inotify: folders watched as they come, renamed, moved out and gone."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanguard.errors import WatchLimit
from scanguard.watching.source import OVERFLOW, InotifySource, RawEvent
from scanguard.watching.tree import Changes, WatchTree

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def source() -> Iterator[InotifySource]:
    src = InotifySource()
    yield src
    src.close()


def drain(tree: WatchTree, source: InotifySource) -> Changes:
    """Every event queued so far, translated (a short read until the queue is quiet)."""
    events: list[RawEvent] = []
    while batch := source.read(0.1):
        events.extend(batch)
    return tree.translate(events)


def test_a_new_folder_with_files_already_inside_is_watched_and_walked(
    tmp_path: Path, source: InotifySource
) -> None:
    tree = WatchTree(source, str(tmp_path))
    tree.arm()
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "1.flac").write_bytes(b"1")
    (tmp_path / "a" / "2.flac").write_bytes(b"2")
    changes = drain(tree, source)
    assert {"a/b/1.flac", "a/2.flac"} <= set(changes.paths)
    assert tree.watches == 3
    (tmp_path / "a" / "b" / "3.flac").write_bytes(b"3")  # its watch is live
    assert "a/b/3.flac" in drain(tree, source).paths


def test_a_renamed_folder_keeps_its_watches_under_the_new_name(tmp_path: Path, source: InotifySource) -> None:
    (tmp_path / "old" / "sub").mkdir(parents=True)
    tree = WatchTree(source, str(tmp_path))
    tree.arm()
    os.rename(tmp_path / "old", tmp_path / "new")
    changes = drain(tree, source)
    assert {"old", "new"} <= set(changes.paths)
    (tmp_path / "new" / "sub" / "x.flac").write_bytes(b"x")
    assert "new/sub/x.flac" in drain(tree, source).paths
    assert tree.watches == 3


def test_a_folder_moved_out_is_no_longer_watched(tmp_path: Path, source: InotifySource) -> None:
    root, outside = tmp_path / "lib", tmp_path / "elsewhere"
    (root / "gone" / "deep").mkdir(parents=True)
    outside.mkdir()
    tree = WatchTree(source, str(root))
    tree.arm()
    os.rename(root / "gone", outside / "gone")
    assert "gone" in drain(tree, source).paths
    assert tree.watches == 1
    (outside / "gone" / "deep" / "y.flac").write_bytes(b"y")
    assert drain(tree, source).paths == {}


def test_the_root_deleted_is_reported_and_overflow_is_flagged(tmp_path: Path, source: InotifySource) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    tree = WatchTree(source, str(root))
    tree.arm()
    assert tree.translate([RawEvent(-1, OVERFLOW)]).overflow
    shutil.rmtree(root)
    assert drain(tree, source).root_gone


def test_more_folders_than_max_watches_is_a_watch_limit_holding_no_watch(
    tmp_path: Path, source: InotifySource
) -> None:
    for i in range(4):
        (tmp_path / f"f{i}").mkdir()
    tree = WatchTree(source, str(tmp_path), max_watches=3)
    with pytest.raises(WatchLimit, match=r"fs\.inotify\.max_user_watches"):
        tree.arm()
    assert tree.watches == 0
    assert not tree.armed
