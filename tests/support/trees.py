"""Media trees on disk for tests, and the expected index computed by an independent os.walk."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from scanguard.config import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ScanConfig

# media extensions as they appear on disk: mostly audio, some video and images, in mixed case
MEDIA_EXTS = (
    "flac",
    "FLAC",
    "mp3",
    "Mp3",
    "ogg",
    "m4a",
    "opus",
    "flac",
    "mkv",
    "MP4",
    "jpg",
    "PNG",
    "webm",
    "wav",
)
OTHER_NAMES = (
    "notes {i}.nfo",
    "lyrics {i}.txt",
    "rip {i}.cue",
    "README {i}",
    "log {i}.log",
    "cover {i}.jpg.bak",
)


@dataclass(frozen=True, slots=True)
class MediaRuleSpec:
    """The DESIGN §4 media rule, restated independently of scanguard.walk.MediaRule."""

    extensions: frozenset[str] = frozenset(AUDIO_EXTENSIONS + VIDEO_EXTENSIONS + IMAGE_EXTENSIONS)
    follow_symlinks: bool = False

    def is_media_name(self, name: str) -> bool:
        stem, dot, ext = name.rpartition(".")
        return bool(dot) and bool(stem) and ext.lower() in self.extensions


DEFAULT_RULE = MediaRuleSpec()


@dataclass(slots=True)
class Tree:
    """What build_tree made."""

    root: Path
    media: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


def _write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"m" * size)


def media_path(i: int, *, nested: bool = True) -> str:
    ext = MEDIA_EXTS[i % len(MEDIA_EXTS)]
    name = f"{i % 10 + 1:02d} - Track {i}.{ext}"
    if not nested:
        return name
    return f"Artist {i // 100:03d}/Album {i // 10 % 10:02d}/{name}"


def build_tree(
    root: str | os.PathLike[str],
    n_media: int,
    n_other: int = 0,
    hidden: bool = True,
    nested: bool = True,
    symlinks: bool = True,
) -> Tree:
    """Make n_media media files shaped like Artist/Album/NN - Track.flac plus n_other non-media files.

    With `hidden`: hidden files and directories (some holding media-named files that must not count).
    With `symlinks`: a directory symlink looping back to the root and a symlink to a media file.
    """
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    tree = Tree(base)
    for i in range(n_media):
        rel = media_path(i, nested=nested)
        _write(base / rel, 16 + i % 97)
        tree.media.append(rel)
    for j in range(n_other):
        name = OTHER_NAMES[j % len(OTHER_NAMES)].format(i=j)
        rel = f"Artist {j // 100:03d}/Album {j // 10 % 10:02d}/{name}" if nested else name
        _write(base / rel, 8)
        tree.other.append(rel)
    if hidden:
        for rel in (
            ".hidden/secret 1.flac",
            ".hidden/deeper/secret 2.mp3",
            ".DS_Store",
            ".hidden track.flac",
            "Artist 000/.AppleDouble/ghost.mp3",
            "Artist 000/Album 00/.partial.flac" if nested else ".partial.flac",
        ):
            _write(base / rel, 4)
    if symlinks:
        first = base / "Artist 000" if nested else base
        first.mkdir(parents=True, exist_ok=True)
        (first / "loop").symlink_to("..", target_is_directory=True)
        if tree.media:
            (first / "link.flac").symlink_to(os.path.relpath(base / tree.media[0], first))
    return tree


def _walk(root: Path, rule: MediaRuleSpec) -> tuple[set[str], Counter[str]]:
    """os.walk with the media rule; loops are cut by (device, inode) of the directories above."""
    media: set[str] = set()
    skips: Counter[str] = Counter()
    root_st = os.stat(root)
    ancestors: dict[str, set[tuple[int, int]]] = {str(root): {(root_st.st_dev, root_st.st_ino)}}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=rule.follow_symlinks):
        above = ancestors.pop(dirpath, set())
        rel_dir = os.path.relpath(dirpath, root)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        keep = []
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full) and not rule.follow_symlinks:
                # os.walk lists it among directories; unfollowed, it is a link, not a directory
                filenames.append(name)
                continue
            if name.startswith("."):
                skips["hidden"] += 1
                continue
            st = os.stat(full)
            ident = (st.st_dev, st.st_ino)
            if ident in above:
                skips["loop"] += 1
                continue
            ancestors[full] = above | {ident}
            keep.append(name)
        dirnames[:] = keep
        for name in filenames:
            full = os.path.join(dirpath, name)
            if name.startswith("."):
                skips["hidden"] += 1
            elif not rule.is_media_name(name):
                skips["not_media"] += 1
            elif os.path.islink(full) and not rule.follow_symlinks:
                skips["not_regular"] += 1
            else:
                media.add(prefix + name)
    return media, skips


def _spec(rule: object, follow_symlinks: bool | None) -> MediaRuleSpec:
    """A MediaRuleSpec from one, from scanguard's ScanConfig or MediaRule (their extension lists only)."""
    if rule is None:
        spec = DEFAULT_RULE
    elif isinstance(rule, MediaRuleSpec):
        spec = rule
    elif isinstance(rule, ScanConfig):
        exts = rule.audio_extensions + rule.video_extensions + rule.image_extensions
        spec = MediaRuleSpec(frozenset(e.lower().lstrip(".") for e in exts), rule.follow_symlinks)
    elif isinstance(getattr(rule, "types", None), dict):
        spec = MediaRuleSpec(frozenset(rule.types))  # type: ignore[attr-defined]
    else:
        raise TypeError(f"not a media rule: {rule!r}")
    if follow_symlinks is not None:
        spec = MediaRuleSpec(spec.extensions, follow_symlinks)
    return spec


def expected_media(
    root: str | os.PathLike[str], rule: object = None, *, follow_symlinks: bool | None = None
) -> set[str]:
    """The relative paths a scan must index, by an os.walk independent of scanguard's Walk.

    `rule` is a MediaRuleSpec, a scanguard ScanConfig, or a scanguard MediaRule (only its extensions are used).
    """
    return _walk(Path(root), _spec(rule, follow_symlinks))[0]


def expected_skips(
    root: str | os.PathLike[str], rule: object = None, *, follow_symlinks: bool | None = None
) -> Counter[str]:
    """How many entries a scan must skip, per reason (a hidden directory counts once)."""
    return _walk(Path(root), _spec(rule, follow_symlinks))[1]
