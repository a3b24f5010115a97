"""Input checks shared by the Runtime and the HTTP layer: ids, and library paths, names and kinds."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from scanguard.errors import BadRequest, NotFound, PathNotAllowed
from scanguard.records import EVENT_FAMILIES, LIBRARY_KINDS, MAX_ID, STATUSES, event_kinds

MAX_PATH = 4096
MAX_NAME = 255
SOME_TEXT = r"[^ \t\n\r\f\v]"
"""Some character that is not ASCII whitespace: the same class in Python and in JSON Schema (ECMA) regexes,
whose whitespace classes differ (U+001C..U+001F are whitespace to Python only)."""
NOT_BLANK = r"^[^\x00]*[^ \t\n\r\f\v\x00][^\x00]*$"
"""The document's pattern for a path: some character that is not ASCII whitespace, and no NUL."""


def is_blank(text: str) -> bool:
    """Empty or only ASCII whitespace (the rule the document states for paths and names)."""
    return re.search(SOME_TEXT, text) is None


def job_statuses(status: str | None) -> tuple[str, ...]:
    """A job listing's status filter: () for every status, or BadRequest naming the field."""
    if status is None:
        return ()
    if status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}, got {status!r}", field="status")
    return (status,)


def event_family(kind: str | None, family: str | None) -> tuple[str, ...] | None:
    """The kind filters of an events read (see records.event_kinds), or BadRequest naming `family`."""
    if family is not None and family not in EVENT_FAMILIES:
        raise BadRequest(f"family must be one of {', '.join(EVENT_FAMILIES)}, got {family!r}", field="family")
    return event_kinds(kind, family)


def check_id(name: str, value: object) -> int:
    """A positive 64-bit integer id, or BadRequest naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise BadRequest(f"{name} must be a positive integer, got {value!r}", field=name)
    return value


def library_path(path: object, allowed_roots: Sequence[str]) -> Path:
    """The resolved folder a library may be made of: an existing directory, inside allowed_roots if set."""
    if not isinstance(path, str | os.PathLike) or is_blank(str(path)):
        raise BadRequest("path must be a non-empty string", field="path")
    if "\x00" in str(path):
        raise BadRequest("path must not contain NUL", field="path")
    if len(str(path)) > MAX_PATH:
        raise BadRequest(f"path must be at most {MAX_PATH} characters", field="path")
    try:
        str(path).encode("utf-8")
        resolved = Path(path).expanduser().resolve()
        roots = [Path(r).expanduser().resolve() for r in allowed_roots]
        if roots and not any(resolved == r or r in resolved.parents for r in roots):
            raise PathNotAllowed(f"{resolved} is outside the allowed roots", path=str(resolved))
        is_dir = resolved.is_dir()
    except UnicodeError as exc:
        raise BadRequest(f"path is not usable: {exc}", field="path") from exc
    except (OSError, RuntimeError) as exc:
        # a well-formed path naming no usable directory on this server (too long, a loop, unreadable): the
        # request is valid by the document, the directory is what is missing
        raise NotFound("directory", str(path)[:200]) from exc
    if not is_dir:
        raise NotFound("directory", str(resolved))
    return resolved


def library_name(name: object, resolved: Path) -> str:
    if name is None:
        return resolved.name or str(resolved)
    if not isinstance(name, str) or is_blank(name) or len(name) > MAX_NAME:
        raise BadRequest(f"name must be a non-empty string of at most {MAX_NAME} characters", field="name")
    return name


def library_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in LIBRARY_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(LIBRARY_KINDS)}, got {kind!r}", field="kind")
    return kind
