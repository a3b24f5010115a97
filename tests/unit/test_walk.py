"""The filesystem side of a scan: walk order, checkpoint resume, symlink loops, the media rule."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from scanguard.config import ScanConfig
from scanguard.walk import Found, MediaRule, RootUnavailable, Skipped, Walk, count_media
from tests.support.trees import MediaRuleSpec, build_tree, expected_media, expected_skips, media_path

pytestmark = pytest.mark.timeout(30)

RULE = MediaRule.from_config(ScanConfig())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    build_tree(root, n_media=120, n_other=30)
    # names whose order differs between naive and byte-wise sorts, and a dir next to a same-prefix file
    for rel in ("a-b.flac", "a/b.flac", "a.b.flac", "a b/c.mp3", "A/Z.MP3", "É/é.ogg", "z/ä.flac"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * 5)
    return root


def test_walk_yields_relative_paths_in_byte_order(tree: Path) -> None:
    """The checkpoint is only complete if the walk order is the sorted order of the paths themselves."""
    paths = [item.path for item in Walk(str(tree), RULE)]
    assert paths == sorted(paths, key=lambda p: p.encode())
    assert len(paths) == len(set(paths))


def test_walk_finds_exactly_what_an_independent_os_walk_expects(tree: Path) -> None:
    """Found items are the media rule's set; skips are counted by reason, a hidden dir once."""
    items = list(Walk(str(tree), RULE))
    assert {i.path for i in items if isinstance(i, Found)} == expected_media(tree)
    assert Counter(i.reason for i in items if isinstance(i, Skipped)) == expected_skips(tree)


def test_resume_after_every_checkpoint_yields_exactly_the_remaining_items(tree: Path) -> None:
    """Walk(after=p) is the tail after p, including hidden directories reported as `name/`."""
    full = list(Walk(str(tree), RULE))
    assert any(isinstance(i, Skipped) and i.path.endswith("/") for i in full), "the tree has a skipped dir"
    for index, item in enumerate(full):
        rest = list(Walk(str(tree), RULE, after=item.path))
        assert rest == full[index + 1 :], f"resume after {item.path!r}"


def test_resume_after_a_path_that_no_longer_exists_continues_in_order(tree: Path) -> None:
    """A checkpoint whose file was deleted still splits the walk correctly."""
    full = [i.path for i in Walk(str(tree), RULE)]
    gone = media_path(34)
    assert gone in full
    os.remove(tree / gone)
    rest = [i.path for i in Walk(str(tree), RULE, after=gone)]
    assert rest == [p for p in full if p.encode() > gone.encode()]


def test_symlink_loop_is_cut_when_following_symlinks(tree: Path) -> None:
    """With follow_symlinks the loop back to the root is skipped as `loop`, and the walk terminates."""
    items = list(Walk(str(tree), RULE, follow_symlinks=True))
    loops = [i for i in items if isinstance(i, Skipped) and i.reason == "loop"]
    assert [i.path for i in loops] == ["Artist 000/loop/"]
    found = {i.path for i in items if isinstance(i, Found)}
    assert found == expected_media(tree, MediaRuleSpec(follow_symlinks=True))
    assert "Artist 000/link.flac" in found


def test_symlinks_are_not_followed_by_default(tree: Path) -> None:
    """Unfollowed, a link to a media file is skipped as not regular and a dir link is not entered."""
    items = {i.path: i for i in Walk(str(tree), RULE)}
    assert items["Artist 000/link.flac"] == Skipped("Artist 000/link.flac", "not_regular")
    assert items["Artist 000/loop"] == Skipped("Artist 000/loop", "not_media")
    assert not any(p.startswith("Artist 000/loop/") for p in items)


def test_missing_root_raises_root_unavailable(tmp_path: Path) -> None:
    with pytest.raises(RootUnavailable):
        list(Walk(str(tmp_path / "nope"), RULE))


@pytest.mark.parametrize(
    ("rel", "media_type"),
    [
        ("Artist/Album/01 - Track.flac", "audio"),
        ("Artist/Album/01 - Track.FLAC", "audio"),
        ("x/Movie.Mkv", "video"),
        ("x/cover.JPEG", "image"),
        ("x/a.b.c.mp3", "audio"),
        ("Vol. 1/track.ogg", "audio"),
        ("x/README", None),
        ("x/notes.nfo", None),
        ("x/flac", None),
        ("x/.flac", None),
        ("x/track.flac.part", None),
        (".hidden/track.flac", None),
        ("x/.AppleDouble/track.flac", None),
        ("x/.track.flac", None),
    ],
)
def test_media_rule_cases(rel: str, media_type: str | None) -> None:
    """Extension in any case, no component starting with a dot, files without an extension are not media."""
    assert RULE.matches(rel) is (media_type is not None)
    assert MediaRuleSpec().is_media_name(rel.rsplit("/", 1)[-1]) is (
        RULE.media_type(rel.rsplit("/", 1)[-1]) is not None
    )
    if media_type is not None:
        assert RULE.media_type(rel.rsplit("/", 1)[-1]) == media_type


def test_media_extensions_are_configurable() -> None:
    """A configured extension list replaces the default, with dots and case ignored."""
    rule = MediaRule.from_config(
        ScanConfig(audio_extensions=(".DSF",), video_extensions=(), image_extensions=())
    )
    assert rule.media_type("song.dsf") == "audio"
    assert rule.media_type("song.flac") is None


def test_count_media_counts_the_media_files_the_walk_will_find(tree: Path) -> None:
    """The counting pass (names only) sees exactly the media files: not a symlink named like media."""
    assert count_media(str(tree), RULE) == len(expected_media(tree))


def test_the_independent_expectation_accepts_scanguards_rule_shapes(tree: Path) -> None:
    """expected_media takes a ScanConfig or MediaRule too, reading only their extension lists."""
    cfg = ScanConfig(follow_symlinks=True)
    assert expected_media(tree, cfg) == expected_media(tree, follow_symlinks=True)
    assert expected_media(tree, RULE) == expected_media(tree)
    only_flac = ScanConfig(audio_extensions=("flac",), video_extensions=(), image_extensions=())
    assert expected_media(tree, only_flac) == {p for p in expected_media(tree) if p.lower().endswith(".flac")}
