"""A scan's scope: the folders and files of a library one job walks, named by relative paths.

A scope is a sorted tuple of normalized relative paths (posix, no `.`, `..`, leading `./` or trailing `/`),
none inside another; `()` is the whole library. A path `s` covers itself and, as a folder, every path
that starts with `s/` — in the byte order of the walk and the database, `s` and the range `[s/, s0)` (`0`
follows `/`), so a scope is a few ranges of the same order the checkpoint relies on.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence

from scanguard.errors import InvalidScope

MAX_SCOPE_PATH = 4096
MAX_SCOPE_PATHS = 100
"""How many paths one job's scope may name, from HTTP or Python (a watcher with more changed paths scans
the whole library): each is a range of the job's reads, and SQLite bounds how many one statement holds."""
MAX_HTTP_SCOPE_PATH = 1024
"""How long one of them may be over HTTP: a hundred such paths, each character percent-encoded UTF-8
(up to 12 bytes), must fit the request line the admin app accepts."""
_SEGMENT = r"(?:[^/\x00.][^/\x00]*|\.(?:[^/\x00.][^/\x00]*)?|\.\.[^/\x00]+)"
SCOPE_PATH_PATTERN = rf"^{_SEGMENT}(?:/{_SEGMENT}?)*$"
"""A relative scope path as the API document states it: no leading `/`, no NUL, no `..` segment (a
segment that is not `..`: empty, `.`, or a name — `..x` and `...` are names). Absolute paths inside the
root are accepted too, but cannot be stated without knowing the root."""


def _relative(path: object, root: str) -> str:
    """One caller's path as a normalized path relative to `root` ("" for the root itself).

    A `..` segment is refused wherever it stands (the one way a relative path could leave the root, and
    an absolute one be outside it while looking inside): the rule the API document states as a pattern."""
    if not isinstance(path, str | os.PathLike):
        raise InvalidScope(path, "must be a string")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise InvalidScope(path, "must be a string")
    if "\x00" in text:
        raise InvalidScope(text.replace("\x00", "\\0"), "must not contain NUL")
    if len(text) > MAX_SCOPE_PATH:
        raise InvalidScope(text, f"is longer than {MAX_SCOPE_PATH} characters")
    try:
        text.encode("utf-8")
    except UnicodeError as exc:
        raise InvalidScope(text.encode("utf-8", "replace").decode(), "is not valid UTF-8") from exc
    if not text:
        raise InvalidScope(text, "is empty")
    native = text.replace(os.sep, "/")
    if ".." in native.split("/"):
        raise InvalidScope(text, "must not contain '..': a scope stays inside the library root")
    if posixpath.isabs(native):
        rel = _inside(native, root)
        if rel is None:
            # a symlinked spelling of a path inside the root (the root is stored resolved)
            rel = _inside(os.path.realpath(native), root)
        if rel is None:
            raise InvalidScope(text, "is outside the library root")
        return rel
    rel = posixpath.normpath(native)
    return "" if rel == "." else rel


def _inside(absolute: str, root: str) -> str | None:
    """`absolute` relative to `root` when it lies in it (lexically), else None."""
    path = posixpath.normpath(absolute)
    base = posixpath.normpath(root.replace(os.sep, "/"))
    if path == base:
        return ""
    prefix = base if base.endswith("/") else base + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def normalize_scope(paths: Iterable[object] | None, root: str) -> tuple[str, ...]:
    """The scope of a job over the library at `root`: sorted, deduplicated, none inside another; a path
    naming the root makes it the whole library, `()`. InvalidScope for a path escaping the root."""
    if paths is None:
        return ()
    if isinstance(paths, str | bytes | os.PathLike):
        raise InvalidScope(paths, "must be given in a list of paths")
    relative = {_relative(p, root) for p in paths}
    if "" in relative:
        return ()
    kept: list[str] = []
    chosen: set[str] = set()
    for rel in sorted(relative):
        parts = rel.split("/")
        if not any("/".join(parts[:i]) in chosen for i in range(1, len(parts))):
            kept.append(rel)
            chosen.add(rel)
    if len(kept) > MAX_SCOPE_PATHS:
        raise InvalidScope(
            f"{len(kept)} paths",
            f"are more than {MAX_SCOPE_PATHS}: name their folders, or scan the whole library",
        )
    return tuple(kept)


def covers(scope: Sequence[str], path: str) -> bool:
    """Whether a relative path (a directory's as `name/`) lies in the scope."""
    if not scope:
        return True
    return any(path == s or path.startswith(s + "/") for s in scope)


def leads_to(scope: Sequence[str], directory: str) -> bool:
    """Whether a directory (as `name/`) holds some scope path below it: the walk descends into it."""
    return any(s.startswith(directory) for s in scope)


def touching(scope: Sequence[str], after: str | None, upto: str | None) -> tuple[str, ...]:
    """The scope paths whose ranges `[s, s + "0")` meet the path range (after, upto] (None: unbounded)."""
    return tuple(s for s in scope if (upto is None or s <= upto) and (not after or after < s + "0"))
