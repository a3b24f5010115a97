"""The filesystem side of a scan: a deterministic walk, the media rule, and the quick hash. No actors, no DB."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from stat import S_ISREG
from typing import TYPE_CHECKING, Protocol

from scanguard.listing import Lister, Plan, Row, make_lister
from scanguard.scope import covers, leads_to

if TYPE_CHECKING:
    from scanguard.config import ScanConfig


class RootUnavailable(Exception):
    """The library root cannot be listed (missing, unmounted, unreadable)."""


class FileSystem(Protocol):
    """The two calls a walk makes, so that a test can hang or fail them."""

    def scandir(self, path: str) -> Iterable[os.DirEntry[str]]: ...

    def stat(self, path: str, *, follow_symlinks: bool) -> os.stat_result: ...


class OsFileSystem:
    """The real filesystem."""

    def scandir(self, path: str) -> Iterable[os.DirEntry[str]]:
        with os.scandir(path) as it:
            return list(it)

    def stat(self, path: str, *, follow_symlinks: bool) -> os.stat_result:
        return os.stat(path, follow_symlinks=follow_symlinks)


@dataclass(frozen=True, slots=True)
class MediaRule:
    """Which files are media: a known extension (any case) and no path component starting with a dot."""

    types: dict[str, str]

    @classmethod
    def from_config(cls, cfg: ScanConfig) -> MediaRule:
        types: dict[str, str] = {}
        for kind, exts in (
            ("audio", cfg.audio_extensions),
            ("video", cfg.video_extensions),
            ("image", cfg.image_extensions),
        ):
            for ext in exts:
                types[ext.lower().lstrip(".")] = kind
        return cls(types)

    def media_type(self, name: str) -> str | None:
        """The media type of a file name by its extension, or None."""
        dot = name.rfind(".")
        if dot <= 0:
            return None
        return self.types.get(name[dot + 1 :].lower())

    def matches(self, rel_path: str) -> bool:
        """The full rule on a relative path (used by tests and the validator as the independent check)."""
        parts = rel_path.split("/")
        return not any(p.startswith(".") for p in parts) and self.media_type(parts[-1]) is not None


@dataclass(frozen=True, slots=True)
class Found:
    """A media file seen by the walk, with its identity on disk (from the walk's one stat of it)."""

    path: str
    size: int
    mtime: float
    media_type: str
    device: int = 0
    inode: int = 0


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry the walk passed over, and why (hidden, not_media, unreadable, undecodable_name, loop)."""

    path: str
    reason: str


WalkItem = Found | Skipped

ListedFile = tuple[str, int, float, str, int, int]  # a Found's fields, in order
ListedSkip = tuple[str, str]  # a Skipped's fields: path, reason
Listed = ListedFile | ListedSkip
"""What the walk yields, as plain tuples: cheap to make, to send to another process, and to write."""


def as_item(listed: Listed) -> WalkItem:
    """A walked entry as its object."""
    if len(listed) == 6:
        return Found(*listed)
    return Skipped(*listed)


def _decodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Walk:
    """A sorted, resumable walk of one library root, or of a scope inside it (scanguard.scope).

    Relative paths come out in plain string order (directories sort as `name/`), the same order the
    database's binary collation gives, so the last committed path is a complete checkpoint. A scoped walk
    lists the root and the folders leading to the scope paths, and yields only what lies in the scope:
    the same order, restricted, so `after` works unchanged.
    """

    def __init__(
        self,
        root: str,
        rule: MediaRule,
        *,
        after: str | None = None,
        follow_symlinks: bool = False,
        fs: FileSystem | None = None,
        walkers: int = 1,
        scope: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.rule = rule
        self.scope = scope
        self.after = after or ""
        self.follow_symlinks = follow_symlinks
        self.fs = fs or OsFileSystem()
        self.walkers = walkers  # directories listed at once (scanguard.listing); 1 is the serial walk

    def __iter__(self) -> Generator[WalkItem]:
        listed = self.listed()
        try:
            for item in listed:
                yield as_item(item)
        finally:
            listed.close()

    def listed(self) -> Generator[Listed]:
        """The walk's entries as plain tuples (`Listed`): what a scan consumes."""
        lister = make_lister(self.fs, Plan(self.follow_symlinks, self._enters, self._stats), self.walkers)
        try:
            try:
                root_entries = lister.rows("", self.root)
            except OSError as exc:
                raise RootUnavailable(f"{self.root}: {exc.strerror or exc}") from exc
            seen: set[tuple[int, int]] = set()
            if self.follow_symlinks:
                st = os.stat(self.root)
                seen.add((st.st_dev, st.st_ino))
            yield from self._walk(root_entries, seen, lister)
        finally:
            lister.close()

    def _enters(self, rel: str, name: str) -> bool:
        """The walk opens this directory (`rel` as `name/`), unless it is a loop: what a lister may list ahead."""
        after = self.after
        if after and rel <= after and (rel == after or not after.startswith(rel)):
            return False
        scope = self.scope
        if scope and not (covers(scope, rel[:-1]) or leads_to(scope, rel)):
            return False
        return not name.startswith(".") and (name.isascii() or _decodable(name))

    def _stats(self, rel: str, name: str) -> bool:
        """The walk stats this file: what a lister may stat ahead."""
        return (
            not (self.after and rel <= self.after)
            and not name.startswith(".")
            and self.rule.media_type(name) is not None
            and (not self.scope or covers(self.scope, rel))
        )

    def _walk(  # noqa: PLR0912 - the per-file path is inlined on purpose
        self, root_entries: list[Row], seen: set[tuple[int, int]], lister: Lister
    ) -> Iterator[Listed]:
        """Depth first in key order, with an explicit stack: one generator frame however deep the tree.

        Each stack level is (prefix, the rest of its sorted entries, the (dev, inode) to forget when done,
        whether the level lies wholly in the scope).
        """
        after = self.after
        follow = self.follow_symlinks
        types = self.rule.types
        scope = self.scope
        stack: list[tuple[str, Iterator[Row], tuple[int, int] | None, bool]] = [
            ("", iter(root_entries), None, not scope)
        ]
        while stack:
            prefix, entries, ident, inside = stack[-1]
            for key, entry, is_dir in entries:
                rel = prefix + key
                entered = inside
                if not inside:  # a folder leading to the scope: only the scope and the way to it
                    entered = covers(scope, rel[:-1] if is_dir else rel)
                    if not entered and not (is_dir and leads_to(scope, rel)):
                        continue
                if is_dir:
                    # everything under `rel` sorts after it: skip the directory whole when the checkpoint is
                    # the directory itself (it was skipped whole) or lies past everything in it
                    if after and rel <= after and (rel == after or not after.startswith(rel)):
                        continue
                    opened = self._open_dir(rel, entry, seen, lister)
                    if len(opened) == 2 and isinstance(opened[1], str):
                        yield opened
                        continue
                    stack.append((rel, iter(opened[0]), opened[1], entered))
                    break  # descend; this level resumes after the directory when the child is done
                if after and rel <= after:
                    continue
                # a file: the media rule, then one stat (inlined: this is the per-file hot path)
                name = entry.name
                if name.startswith("."):
                    yield (rel, "hidden")
                elif not name.isascii() and not _decodable(name):
                    yield (rel, "undecodable_name")
                else:
                    dot = name.rfind(".")
                    media_type = types.get(name[dot + 1 :].lower()) if dot > 0 else None
                    if media_type is None:
                        yield (rel, "not_media")
                        continue
                    try:
                        st = entry.stat(follow_symlinks=follow)
                    except OSError:
                        yield (rel, "unreadable")
                        continue
                    if S_ISREG(st.st_mode):
                        yield (rel, st.st_size, st.st_mtime, media_type, st.st_dev, st.st_ino)
                    else:
                        yield (rel, "not_regular")
            else:
                stack.pop()
                if ident is not None:
                    seen.discard(ident)

    def _open_dir(
        self, rel: str, entry: os.DirEntry[str], seen: set[tuple[int, int]], lister: Lister
    ) -> ListedSkip | tuple[list[Row], tuple[int, int] | None]:
        """A directory's sorted entries and its (dev, inode) when following links, or why it is skipped.

        A directory skipped whole is reported as `name/`, its place in the walk order.
        """
        name = entry.name
        if name.startswith("."):
            return (rel, "hidden")
        if not name.isascii() and not _decodable(name):
            return (rel, "undecodable_name")
        ident: tuple[int, int] | None = None
        if self.follow_symlinks:
            try:
                ident = lister.ident(rel, entry.path)
            except OSError:
                return (rel, "unreadable")
            if ident in seen:
                return (rel, "loop")
            seen.add(ident)
        try:
            return lister.rows(rel, entry.path), ident
        except OSError:
            # (the ident stays in `seen`, as it always has: a later link to it reads as a loop)
            return (rel, "unreadable")


def count_media(
    root: str, rule: MediaRule, *, follow_symlinks: bool = False, scope: tuple[str, ...] = ()
) -> int:
    """A fast counting pass (names only, no stat) for the progress total: of the scope, if one is given."""
    if scope:
        return sum(_count_scope_path(root, s, rule, follow_symlinks) for s in scope)
    return _count_tree(root, rule, follow_symlinks)


def _count_scope_path(root: str, rel: str, rule: MediaRule, follow_symlinks: bool) -> int:
    if any(part.startswith(".") for part in rel.split("/")):
        return 0
    path = os.path.join(root, rel)
    try:
        if os.path.isdir(path) and (follow_symlinks or not os.path.islink(path)):
            return _count_tree(path, rule, follow_symlinks)
    except OSError:
        return 0
    return int(rule.media_type(rel.rsplit("/", 1)[-1]) is not None and os.path.isfile(path))


def _count_tree(root: str, rule: MediaRule, follow_symlinks: bool) -> int:
    total = 0
    stack = [root]
    seen: set[tuple[int, int]] = set()
    while stack:
        path = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=follow_symlinks):
                    if follow_symlinks:
                        st = entry.stat()
                        if (st.st_dev, st.st_ino) in seen:
                            continue
                        seen.add((st.st_dev, st.st_ino))
                    stack.append(entry.path)
                elif rule.media_type(entry.name) is not None and entry.is_file(
                    follow_symlinks=follow_symlinks
                ):
                    total += 1
            except OSError:
                continue
    return total


def quick_hash(path: str, size: int, nbytes: int) -> str | None:
    """blake2b of the size and the first and last `nbytes` of a file; None when disabled or unreadable."""
    if nbytes <= 0:
        return None
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    try:
        with open(path, "rb") as fh:
            digest.update(fh.read(nbytes))
            if size > 2 * nbytes:
                fh.seek(size - nbytes)
                digest.update(fh.read(nbytes))
    except OSError:
        return None
    return digest.hexdigest()
