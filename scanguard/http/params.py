"""Request parsing for the admin API: path ids, bounded query values and strict JSON bodies.

Everything a client sends is checked here before the Runtime sees it; a bad value is a 400
`bad_request` naming the field, never a 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from aiohttp import web

from scanguard.errors import BadRequest
from scanguard.validation import MAX_ID

MAX_OFFSET = 2**31 - 1
MAX_LIMIT = 1000
_POSITIVE = re.compile(r"[1-9][0-9]{0,18}")
_NATURAL = re.compile(r"0|[1-9][0-9]{0,18}")
EVENT_KIND = r"[A-Za-z0-9_.\-]{1,64}"
"""An event kind, or a family ending with '.' (job.paused, alert., file.quarantined): the document's pattern."""


class UnsupportedMediaType(BadRequest):
    """The request body must be application/json."""

    status = 415
    code = "unsupported_media_type"


def _int(name: str, raw: str, *, minimum: int, maximum: int) -> int:
    pattern = _POSITIVE if minimum >= 1 else _NATURAL
    if not pattern.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise BadRequest(
            f"{name} must be an integer within {minimum}..{maximum}, got {raw[:40]!r}", field=name
        )
    return int(raw)


def path_id(request: web.Request, name: str) -> int:
    """A positive 64-bit id from the URL path: 400 for `abc`, `-1`, `0`, `1e9` or anything past 2**63-1."""
    return _int(name, request.match_info[name], minimum=1, maximum=MAX_ID)


def _single(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"{name} may be given once, got {len(values)} values", field=name)
    return values[0] if values else None


def query_int(
    request: web.Request, name: str, *, default: int | None, minimum: int, maximum: int
) -> int | None:
    """An optional integer query parameter within bounds."""
    raw = _single(request, name)
    if raw is None:
        return default
    return _int(name, raw, minimum=minimum, maximum=maximum)


def query_id(request: web.Request, name: str) -> int | None:
    """An optional id filter (positive, 64-bit)."""
    return query_int(request, name, default=None, minimum=1, maximum=MAX_ID)


def query_str(
    request: web.Request, name: str, *, choices: Collection[str] | None = None, pattern: str = EVENT_KIND
) -> str | None:
    """An optional string query parameter: one of `choices` when given, else matching `pattern` whole."""
    raw = _single(request, name)
    if raw is None:
        return None
    if choices is not None and raw not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}, got {raw[:40]!r}", field=name)
    if choices is None and not re.fullmatch(pattern, raw):
        raise BadRequest(f"{name} must match {pattern}, got {raw[:40]!r}", field=name)
    return raw


def query_bool(request: web.Request, name: str) -> bool:
    """An optional flag: `true` or `false` (default false)."""
    raw = _single(request, name)
    if raw is None:
        return False
    if raw not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false, got {raw[:40]!r}", field=name)
    return raw == "true"


def query_list(request: web.Request, name: str, *, max_items: int, max_length: int) -> list[str]:
    """A repeatable query parameter (`?path=a&path=b`): at most `max_items` values of `max_length` each."""
    values = request.query.getall(name, [])
    if len(values) > max_items:
        raise BadRequest(f"{name} may be given at most {max_items} times, got {len(values)}", field=name)
    if any(len(v) > max_length for v in values):
        raise BadRequest(f"each {name} must be at most {max_length} characters", field=name)
    return list(values)


def paging(request: web.Request, *, default_limit: int = 100) -> tuple[int, int]:
    """limit (1..1000) and offset (0..2**31-1)."""
    limit = query_int(request, "limit", default=default_limit, minimum=1, maximum=MAX_LIMIT)
    offset = query_int(request, "offset", default=0, minimum=0, maximum=MAX_OFFSET)
    return limit or default_limit, offset or 0


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not JSON")


async def json_object(
    request: web.Request, *, required: dict[str, type], optional: dict[str, type]
) -> dict[str, Any]:
    """A JSON object body with exactly these fields and types: 415 for another content type, 400 otherwise."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"the body must be application/json, got {request.content_type or 'none'}",
            content_type=request.content_type,
        )
    raw = await request.read()  # aiohttp raises 413 past client_max_size
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {str(exc)[:120]}") from exc
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)[:200]}", fields=unknown[:20])
    for name in required:
        if name not in body:
            raise BadRequest(f"{name} is required", field=name)
    for name in optional:
        if body.get(name, 0) is None:
            del body[name]  # null means "the default"
    for name, kind in {**required, **optional}.items():
        value = body.get(name)
        if name in body and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
            raise BadRequest(f"{name} must be a {kind.__name__}, got {type(body[name]).__name__}", field=name)
    return body
