"""MoveFinder (issue 15, item 2): which new paths are known rows moved there — on real files, with the
store's lookup replaced by the rows a test states (the one seam that needs no database here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scanguard.moves import MoveFinder
from scanguard.store.moves import MoveSource, signed64
from scanguard.walk import Found

pytestmark = pytest.mark.timeout(30)


def _found(root: Path, rel: str) -> Found:
    st = os.stat(root / rel)
    return Found(rel, st.st_size, st.st_mtime, "audio", st.st_dev, st.st_ino)


def _row(row_id: int, path: str, found: Found, *, size: int | None = None) -> MoveSource:
    return MoveSource(
        row_id,
        path,
        found.size if size is None else size,
        found.mtime,
        signed64(found.device),
        signed64(found.inode),
        missing=False,
    )


class Rows:
    """The lookup: the stated rows with one of the asked inodes, and how often it was asked."""

    def __init__(self, *rows: MoveSource) -> None:
        self.rows = rows
        self.calls: list[tuple[int, ...]] = []

    def __call__(self, inodes: tuple[int, ...]) -> tuple[MoveSource, ...]:
        self.calls.append(inodes)
        return tuple(r for r in self.rows if r.inode in inodes)


def test_a_renamed_file_is_its_row_moved_once_and_a_hard_link_is_not(tmp_path: Path) -> None:
    (tmp_path / "a.flac").write_bytes(b"x" * 10)
    (tmp_path / "b.flac").write_bytes(b"y" * 10)
    before = _found(tmp_path, "a.flac")
    os.rename(tmp_path / "a.flac", tmp_path / "moved.flac")
    os.link(tmp_path / "b.flac", tmp_path / "linked.flac")
    rows = Rows(_row(1, "a.flac", before), _row(2, "b.flac", _found(tmp_path, "b.flac")))
    finder = MoveFinder(str(tmp_path), rows)

    moved = finder.find([_found(tmp_path, "moved.flac"), _found(tmp_path, "linked.flac")])

    assert list(moved) == ["moved.flac"]
    assert (moved["moved.flac"].id, moved["moved.flac"].from_path) == (1, "a.flac")
    assert finder.claimed == {1}
    assert len(rows.calls) == 1, "one lookup for the whole stretch"
    assert finder.find([_found(tmp_path, "moved.flac")]) == {}, "a claimed row moves once"


def test_a_changed_size_or_a_file_replaced_at_the_old_path_is_no_move(tmp_path: Path) -> None:
    (tmp_path / "a.flac").write_bytes(b"x" * 10)
    before = _found(tmp_path, "a.flac")
    os.rename(tmp_path / "a.flac", tmp_path / "new.flac")
    (tmp_path / "a.flac").write_bytes(b"another file")
    new = _found(tmp_path, "new.flac")

    assert MoveFinder(str(tmp_path), Rows(_row(1, "a.flac", before))).find([new]) == {}, "old path taken"
    os.remove(tmp_path / "a.flac")
    assert MoveFinder(str(tmp_path), Rows(_row(1, "a.flac", before, size=11))).find([new]) == {}
    assert list(MoveFinder(str(tmp_path), Rows(_row(1, "a.flac", before))).find([new])) == ["new.flac"]


def test_files_without_inode_numbers_are_never_looked_up(tmp_path: Path) -> None:
    rows = Rows()
    assert MoveFinder(str(tmp_path), rows).find([Found("x.flac", 1, 1.0, "audio", 0, 0)]) == {}
    assert rows.calls == []


def test_device_and_inode_numbers_past_63_bits_fit_the_signed_column() -> None:
    assert signed64(2**64 - 1) == -1
    assert signed64(2**63) == -(2**63)
    assert signed64(2**63 - 1) == 2**63 - 1
    assert signed64(12345) == 12345
