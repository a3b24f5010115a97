"""Scopes (issue 15, item 1): how the paths a caller names become a job's scope, and the scoped walk —
the full walk's order restricted to the scope, so a checkpoint resumes it exactly."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest

import scanguard
from scanguard.config import ScanConfig
from scanguard.scope import covers, normalize_scope
from scanguard.walk import Found, MediaRule, OsFileSystem, Walk, count_media
from tests.support.trees import build_tree

pytestmark = pytest.mark.timeout(30)

RULE = MediaRule.from_config(ScanConfig())
ROOT = "/srv/media"


@pytest.mark.parametrize(
    ("paths", "scope"),
    [
        (None, ()),
        ([], ()),
        (["a/b/", "./a/b", "a//b"], ("a/b",)),
        (["z", "a b", "a", "a/x.flac", "a-b"], ("a", "a b", "a-b", "z")),
        (["a/b/c", "a/b"], ("a/b",)),
        (["x/./y/", " ", "..x/...", "a/.b"], (" ", "..x/...", "a/.b", "x/y")),
        (["/srv/media/Album", "/srv/media/Album/1.flac"], ("Album",)),
        (["Album", "."], ()),
        (["/srv/media/"], ()),
    ],
)
def test_scope_paths_are_normalized_sorted_and_deduplicated(
    paths: list[str] | None, scope: tuple[str, ...]
) -> None:
    assert normalize_scope(paths, ROOT) == scope


@pytest.mark.parametrize(
    "bad",
    [
        "..",
        "../x",
        "a/../b",
        "a/..",
        "/srv/media/a/../b",
        "/srv/other",
        "/srv/media-2/x",
        "/",
        "",
        "a\x00",
        7,
        b"a",
    ],
)
def test_a_path_escaping_the_root_or_not_a_path_is_an_invalid_scope(bad: object) -> None:
    with pytest.raises(scanguard.InvalidScope) as caught:
        normalize_scope(["fine", bad], ROOT)
    assert (caught.value.status, caught.value.code) == (400, "invalid_scope")


def test_a_bare_string_is_not_taken_for_a_list_of_one_letter_paths() -> None:
    with pytest.raises(scanguard.InvalidScope):
        normalize_scope("Album", ROOT)  # type: ignore[arg-type]


def test_a_folder_scope_covers_its_subtree_and_not_its_same_prefix_siblings() -> None:
    scope = ("a",)
    assert [covers(scope, p) for p in ("a", "a/b.flac", "a/b/")] == [True, True, True]
    assert [covers(scope, p) for p in ("a b/c.flac", "a.flac", "ab", "a0")] == [False] * 4


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    build_tree(root, n_media=300, n_other=30)
    # siblings whose names share the scope's prefix and sort around its range
    for rel in ("a-b.flac", "a/b.flac", "a/c/d.flac", "a.b.flac", "a b/c.mp3", "a0.flac", "É/é.ogg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * 5)
    return root


SCOPES = [
    ("a",),
    ("a/c",),
    ("a/b.flac",),
    ("Artist 001", "Artist 002/Album 03", "a"),
    ("Artist 000/Album 01/02 - Track 11.mp3", "É"),
    ("nowhere", "Artist 009"),
]


@pytest.mark.parametrize("walkers", [1, 4])
@pytest.mark.parametrize("scope", SCOPES)
def test_a_scoped_walk_is_the_full_walk_restricted_to_the_scope(
    tree: Path, scope: tuple[str, ...], walkers: int
) -> None:
    full = [i for i in Walk(str(tree), RULE) if isinstance(i, Found)]
    scoped = [i for i in Walk(str(tree), RULE, scope=scope, walkers=walkers) if isinstance(i, Found)]
    assert scoped == [i for i in full if covers(scope, i.path)]
    assert count_media(str(tree), RULE, scope=scope) == len(scoped)


@pytest.mark.parametrize("scope", SCOPES[:5])
def test_a_scoped_walk_resumes_after_every_checkpoint_with_exactly_the_rest(
    tree: Path, scope: tuple[str, ...]
) -> None:
    walked = list(Walk(str(tree), RULE, scope=scope))
    assert walked, "the scope holds something"
    for index, item in enumerate(walked):
        assert list(Walk(str(tree), RULE, scope=scope, after=item.path)) == walked[index + 1 :]


def test_found_files_carry_their_device_and_inode(tree: Path) -> None:
    for item in Walk(str(tree), RULE, scope=("a",)):
        assert isinstance(item, Found)
        st = os.stat(tree / item.path)
        assert (item.device, item.inode) == (st.st_dev, st.st_ino)


class ListedDirs(OsFileSystem):
    """The real filesystem, recording every directory listed (by the walk or its listers)."""

    def __init__(self) -> None:
        self.listed: list[str] = []

    def scandir(self, path: str) -> Iterable[os.DirEntry[str]]:
        self.listed.append(path)
        return super().scandir(path)


@pytest.mark.parametrize("walkers", [1, 4])
def test_a_scoped_walk_lists_only_the_scope_and_the_folders_leading_to_it(tree: Path, walkers: int) -> None:
    fs = ListedDirs()
    list(Walk(str(tree), RULE, scope=("Artist 002/Album 03", "a"), walkers=walkers, fs=fs))
    listed = {os.path.relpath(p, tree) for p in fs.listed}
    assert listed == {".", "Artist 002", "Artist 002/Album 03", "a", "a/c"}


def test_a_scope_of_more_than_a_hundred_paths_is_refused_from_python_too() -> None:
    """Beyond 100 paths a scan names their folders or the whole library (a thousand ranges would not fit
    one SQLite statement); a hundred, or many paths inside one folder, are taken."""
    assert len(normalize_scope([f"a{i}" for i in range(100)], ROOT)) == 100
    assert normalize_scope(["a", *[f"a/{i}" for i in range(500)]], ROOT) == ("a",)
    with pytest.raises(scanguard.InvalidScope, match="more than 100"):
        normalize_scope([f"a{i}" for i in range(101)], ROOT)
