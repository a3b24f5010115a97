"""Parallel listing (issue 18): a walk with several walkers yields exactly what the serial walk yields."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from scanguard.config import ScanConfig
from scanguard.listing import BackgroundCount
from scanguard.walk import MediaRule, OsFileSystem, RootUnavailable, Walk, WalkItem, count_media
from tests.support.trees import build_tree

pytestmark = pytest.mark.timeout(60)

RULE = MediaRule.from_config(ScanConfig())
WALKERS = (2, 4, 16)


class RefusingFileSystem(OsFileSystem):
    """The real filesystem, except that some directories cannot be listed or stat'ed (we run as root here,
    where chmod 000 does not stop a read), and it counts every listing."""

    def __init__(self, unlistable: Iterable[Path] = (), unstatable: Iterable[Path] = ()) -> None:
        self.unlistable = {os.fspath(p) for p in unlistable}
        self.unstatable = {os.fspath(p) for p in unstatable}
        self.listings: Counter[str] = Counter()
        self._lock = threading.Lock()

    def scandir(self, path: str) -> list[os.DirEntry[str]]:
        with self._lock:
            self.listings[os.path.normpath(path)] += 1
        if os.path.normpath(path) in self.unlistable:
            raise PermissionError(13, "Permission denied", path)
        return super().scandir(path)  # type: ignore[return-value]

    def stat(self, path: str, *, follow_symlinks: bool) -> os.stat_result:
        if os.path.normpath(path) in self.unstatable:
            raise PermissionError(13, "Permission denied", path)
        return super().stat(path, follow_symlinks=follow_symlinks)


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Albums, hidden files and dirs, non-media, a loop to the root, a link to a sibling, deep nesting,
    an empty dir, a flat dir, dangling media links, a name that is not UTF-8, and dirs the fake refuses."""
    root = tmp_path_factory.mktemp("varied") / "lib"
    build_tree(root, n_media=400, n_other=60)
    deep = root / "Deep"
    for level in range(40):
        deep = deep / f"L{level:02d}"
        deep.mkdir(parents=True)
        (deep / f"{level:02d}.mp3").write_bytes(b"x" * level)
        (deep / "notes.txt").write_bytes(b"n")
    (root / "Empty").mkdir()
    flat = root / "Flat"  # more media files than one thread stats (STAT_CHUNK): chunks of it go in parallel
    flat.mkdir()
    for i in range(150):
        (flat / (f"IMG_{i:04d}.jpg" if i % 5 else f"IMG_{i:04d}.xmp")).write_bytes(b"p" * i)
    for i in (7, 77):
        (flat / f"IMG_{i:04d}b.jpg").symlink_to(f"gone-{i}.jpg")
    (root / "Artist 001" / "again").symlink_to("../Artist 002", target_is_directory=True)
    (root / "Artist 001" / "dangling.flac").symlink_to("nowhere.flac")
    odd = os.fsencode(root / "Odd")
    os.makedirs(odd + b"/\xff name")
    for name in (b"/\xff name/in.flac", b"/\xfe.flac"):
        with open(odd + name, "wb") as fh:
            fh.write(b"o")
    for rel in ("Locked/Inside", "Unstatable/Inside"):
        (root / rel).mkdir(parents=True)
        (root / rel / "hidden from us.flac").write_bytes(b"l")
    return root


def _fs(root: Path) -> RefusingFileSystem:
    return RefusingFileSystem(
        unlistable=[root / "Locked", root / "Artist 003" / "Album 02"], unstatable=[root / "Unstatable"]
    )


def _walk(root: Path, walkers: int, *, follow: bool, after: str | None = None) -> list[WalkItem]:
    return list(Walk(str(root), RULE, after=after, follow_symlinks=follow, fs=_fs(root), walkers=walkers))


@pytest.mark.parametrize("follow", [False, True], ids=["links-unfollowed", "links-followed"])
@pytest.mark.parametrize("walkers", WALKERS)
def test_a_parallel_walk_yields_exactly_the_serial_walks_sequence(
    varied: Path, walkers: int, follow: bool
) -> None:
    """Same items, same reasons, same order: hidden, not media, unreadable, loop, undecodable, deep."""
    serial = _walk(varied, 1, follow=follow)
    reasons = Counter(getattr(i, "reason", "found") for i in serial)
    assert {"hidden", "not_media", "unreadable", "undecodable_name", "found"} <= set(reasons), reasons
    if follow:
        assert reasons["loop"] >= 1, reasons
    assert _walk(varied, walkers, follow=follow) == serial


@pytest.mark.parametrize("follow", [False, True], ids=["links-unfollowed", "links-followed"])
def test_a_parallel_walk_resumed_after_any_checkpoint_yields_exactly_the_serial_tail(
    varied: Path, follow: bool
) -> None:
    """The checkpoint contract holds with walkers > 1: after=p is the serial walk's tail after p."""
    serial = _walk(varied, 1, follow=follow)
    for index in range(0, len(serial), 7):
        after = serial[index].path
        assert _walk(varied, 4, follow=follow, after=after) == serial[index + 1 :], f"after {after!r}"


def test_a_resumed_parallel_walk_lists_exactly_the_directories_the_serial_walk_lists(varied: Path) -> None:
    """Nothing before the checkpoint is listed ahead, and no directory is listed twice."""
    serial = _walk(varied, 1, follow=False)
    after = serial[len(serial) // 2].path
    one, many = _fs(varied), _fs(varied)
    list(Walk(str(varied), RULE, after=after, fs=one, walkers=1))
    list(Walk(str(varied), RULE, after=after, fs=many, walkers=8))
    assert many.listings == one.listings
    assert max(many.listings.values()) == 1


class CrashingFileSystem(OsFileSystem):
    """Listing one directory raises an error that is not an OSError (a driver bug)."""

    def __init__(self, crash_on: Path) -> None:
        self.crash_on = os.fspath(crash_on)

    def scandir(self, path: str) -> list[os.DirEntry[str]]:
        if os.path.normpath(path) == self.crash_on:
            raise RuntimeError(f"driver bug listing {path}")
        return super().scandir(path)  # type: ignore[return-value]


@pytest.mark.parametrize("walkers", [1, 8])
def test_an_error_listing_a_directory_surfaces_where_the_serial_walk_meets_it(
    varied: Path, walkers: int
) -> None:
    """The items before the directory come out, then the error: listed ahead, it is held until then."""
    crash = varied / "Artist 002" / "Album 05"
    serial = _walk(varied, 1, follow=False)
    before = [i for i in serial if i.path < "Artist 002/Album 05/"]
    got: list[WalkItem] = []
    with pytest.raises(RuntimeError, match="driver bug"):
        got.extend(Walk(str(varied), RULE, fs=CrashingFileSystem(crash), walkers=walkers))
    assert got == before


def test_a_missing_root_is_root_unavailable_with_several_walkers(tmp_path: Path) -> None:
    with pytest.raises(RootUnavailable):
        list(Walk(str(tmp_path / "nope"), RULE, walkers=8))


class SlowRootFileSystem(OsFileSystem):
    """The real filesystem, whose root takes a NAS's time to list: slow enough for the listers to start."""

    def __init__(self, root: Path) -> None:
        self.root = os.fspath(root)

    def scandir(self, path: str) -> list[os.DirEntry[str]]:
        if os.path.normpath(path) == self.root:
            time.sleep(0.02)
        return super().scandir(path)  # type: ignore[return-value]


def _listers(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and t.name.startswith("scanguard-lister")]


def test_closing_a_parallel_walk_ends_its_lister_threads(varied: Path) -> None:
    """One teardown: the walk's generator closes its lister, whose threads then end."""
    before = set(threading.enumerate())
    walk = iter(Walk(str(varied), RULE, walkers=6, fs=SlowRootFileSystem(varied)))
    next(walk)
    listers = _listers(before)
    assert len(listers) == 6
    walk.close()
    for thread in listers:
        thread.join(timeout=10)
    assert not [t.name for t in listers if t.is_alive()]


@pytest.mark.parametrize("follow", [False, True], ids=["links-unfollowed", "links-followed"])
def test_the_background_count_equals_the_serial_counting_pass(varied: Path, follow: bool) -> None:
    count = BackgroundCount(str(varied), RULE.media_type, follow_symlinks=follow, walkers=4)
    try:
        assert count.wait(timeout=30) == count_media(str(varied), RULE, follow_symlinks=follow)
    finally:
        count.close()


def test_a_fast_disk_is_listed_by_the_walk_alone_without_lister_threads(varied: Path) -> None:
    """Handing directories between threads costs more than listing a warm local disk: no listers start,
    and the walk is the serial walk's."""
    before = set(threading.enumerate())
    walk = iter(Walk(str(varied), RULE, walkers=6))
    try:
        items = list(walk)
        assert not _listers(before)
    finally:
        walk.close()
    assert items == list(Walk(str(varied), RULE, walkers=1))


class CountingFileSystem(SlowRootFileSystem):
    """The real filesystem with a slow root; says when the n-th listing starts, and when one more does."""

    def __init__(self, root: Path, bound: int) -> None:
        super().__init__(root)
        self.bound = bound
        self.count = 0
        self.reached = threading.Event()
        self.overflow = threading.Event()
        self._lock = threading.Lock()

    def scandir(self, path: str) -> list[os.DirEntry[str]]:
        with self._lock:
            self.count += 1
            if self.count >= self.bound:
                self.reached.set()
            if self.count > self.bound:
                self.overflow.set()
        return super().scandir(path)  # type: ignore[return-value]


def test_the_listers_run_ahead_of_a_stopped_walk_by_at_most_their_lookahead(tmp_path: Path) -> None:
    """Bounded memory: with the walk stopped after the root, 2 walkers list 4 x 2 directories and no more."""
    root = tmp_path / "lib"
    build_tree(root, n_media=600)  # 60 album directories
    fs = CountingFileSystem(root, bound=1 + 4 * 2)  # the root (the walk's own), then the lookahead
    walk = iter(Walk(str(root), RULE, fs=fs, walkers=2))
    try:
        first = next(walk)
        assert first.path == ".DS_Store", "the walk stopped right after listing the root"
        assert fs.reached.wait(10), f"the listers went ahead of the walk: {fs.count} listings"
        assert not fs.overflow.wait(0.5), f"{fs.count} listings: more than the lookahead"
        rest = [first, *walk]
    finally:
        walk.close()
    assert rest == list(Walk(str(root), RULE))
