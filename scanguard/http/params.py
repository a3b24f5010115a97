"""Request parsing for the admin API: path ids, query parameters and JSON bodies, each read into its
declaration — a msgspec Struct whose fields and bounds the OpenAPI document is derived from too.

Everything a client sends is checked here before the Runtime sees it; a bad value is a 400
`bad_request` naming the field, never a 500.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import msgspec
import msgspec.inspect as mi
from aiohttp import web
from msgspec import Meta

from scanguard.errors import BadRequest
from scanguard.input_checks import MAX_NAME, MAX_PATH, NOT_BLANK, SOME_TEXT
from scanguard.records import EVENT_FAMILIES, MAX_ID, Id, JobStatus, LibraryKind
from scanguard.scope import MAX_HTTP_SCOPE_PATH, MAX_SCOPE_PATHS, SCOPE_PATH_PATTERN

Q = TypeVar("Q", bound=msgspec.Struct)

MAX_OFFSET = 2**31 - 1
MAX_LIMIT = 1000
EVENT_KIND = r"[A-Za-z0-9_.\-]{1,64}"
"""An event kind, or a family ending with '.' (job.paused, alert., file.quarantined): the document's pattern."""

Limit = Annotated[int, Meta(ge=1, le=MAX_LIMIT, description="page size: at most this many")]
Offset = Annotated[int, Meta(ge=0, le=MAX_OFFSET, description="rows to skip")]
EventKind = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=f"^{EVENT_KIND}$",
        description="a kind, or a family ending with '.'",
    ),
]
if TYPE_CHECKING:
    FamilyName = str
else:
    FamilyName = Literal[tuple(EVENT_FAMILIES)]  # the families' names, as a type msgspec checks and documents
EventFamily = Annotated[
    FamilyName,
    Meta(
        description="only kinds of this family (with `kind`: both); "
        + "; ".join(f"{name}: {', '.join(prefixes)}" for name, prefixes in EVENT_FAMILIES.items())
    ),
]
ScopePath = Annotated[
    str,
    Meta(max_length=MAX_HTTP_SCOPE_PATH, extra_json_schema={"minLength": 1, "pattern": SCOPE_PATH_PATTERN}),
]
"""A scope path: its length bounded here; the rest of the rule the document states (relative, no `..`) is the
scope's own check, which answers 400 `invalid_scope` (and accepts an absolute path inside the root too)."""


class UnsupportedMediaType(BadRequest):
    """The request body must be application/json."""

    status = 415
    code = "unsupported_media_type"


# ---- query parameters, one Struct per operation ----------------------------------------------------


class Query(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The query parameters of one operation: each field is one parameter, absent or given once (a list:
    repeatable)."""


class StartQuery(Query, frozen=True):
    retry_failed: Annotated[
        bool, Meta(description="also process again unchanged files whose per-file work failed before")
    ] = False
    path: Annotated[
        list[ScopePath],
        Meta(
            max_length=MAX_SCOPE_PATHS,
            description="scan only these folders or files (repeatable, relative to the library root; an "
            "absolute path inside the root is accepted too); none: the whole library. A path with a '..' "
            "segment or outside the root answers 400 invalid_scope and starts nothing",
        ),
    ] = []


class Paging(Query, frozen=True):
    limit: Limit = 100
    offset: Offset = 0


class JobsQuery(Paging, frozen=True):
    status: Annotated[JobStatus, Meta(description="only this status")] | None = None
    library_id: Annotated[Id, Meta(description="only this library's jobs")] | None = None


class FilesQuery(Paging, frozen=True):
    errors: Annotated[
        bool, Meta(description="only files whose per-file work failed (their error says why)")
    ] = False


class EventFilter(Query, frozen=True):
    job_id: Annotated[Id, Meta(description="only this job's events")] | None = None
    library_id: Annotated[Id, Meta(description="only this library's events")] | None = None
    kind: EventKind | None = None
    family: EventFamily | None = None


AfterId = Annotated[int, Meta(ge=0, le=MAX_ID, description="only events after this id")]


class EventsQuery(EventFilter, frozen=True):
    after_id: AfterId = 0
    limit: Limit = 100
    newest_first: Annotated[bool, Meta(description="newest first")] = False


class StreamQuery(EventFilter, frozen=True):
    after_id: AfterId | None = None
    token: Annotated[str, Meta(description="the bearer token, for EventSource (this route only)")] | None = (
        None
    )


# ---- request bodies ------------------------------------------------------------------------------------


class NewLibrary(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A folder to register as a library."""

    path: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_PATH,
            pattern=NOT_BLANK,
            description="An existing directory on the server (404 when there is none there), inside "
            "allowed_roots when that is set (403 otherwise).",
        ),
    ]
    name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME, pattern=SOME_TEXT)] | None = None
    kind: LibraryKind = "mixed"
    watch: (
        Annotated[bool, Meta(description="Follow the folder's changes (default: [watch] default, true).")]
        | None
    ) = None


class LibraryPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A library's watching switched on or off."""

    watch: bool


# ---- reading them ----------------------------------------------------------------------------------------


def _field_of(exc: msgspec.ValidationError) -> str | None:
    found = re.search(r"at `\$\.([A-Za-z_]+)", str(exc))
    return found.group(1) if found else None


def _bad(exc: msgspec.ValidationError, what: str, field: str | None = None) -> BadRequest:
    field = field or _field_of(exc)
    if field is None and (unknown := re.search(r"unknown field `(.{0,200})`", str(exc))):
        return BadRequest(f"{what}: unknown field {unknown.group(1)!r}", fields=[unknown.group(1)])
    return BadRequest(f"{what}: {exc}"[:300], **({"field": field} if field else {}))


_INTEGER = re.compile(r"0|-?[1-9][0-9]{0,30}")


def _wire(raw: str, kinds: frozenset[type]) -> object:
    """A query or path value as its declared type reads it: a canonical integer, `true`/`false`, else the
    text (which the type then refuses: `01`, `1e3`, `1.0`, `yes` are not spellings of a value)."""
    if mi.IntType in kinds and _INTEGER.fullmatch(raw):
        return int(raw)
    if mi.BoolType in kinds and raw in ("true", "false"):
        return raw == "true"
    return raw


def _bare(t: mi.Type) -> mi.Type:
    return _bare(t.type) if isinstance(t, mi.Metadata) else t


def _kinds(t: mi.Type) -> frozenset[type]:
    t = _bare(t)
    members = t.types if isinstance(t, mi.UnionType) else (t,)
    return frozenset(type(_bare(m)) for m in members)


@functools.cache
def _fields(model: type[msgspec.Struct]) -> tuple[tuple[str, bool, frozenset[type]], ...]:
    """Each parameter of a query Struct: its name, whether it repeats, and the kinds of value it takes."""
    info = mi.type_info(model)
    assert isinstance(info, mi.StructType)
    return tuple(
        (f.encode_name, True, _kinds(bare.item_type))
        if isinstance(bare := _bare(f.type), mi.ListType)
        else (f.encode_name, False, _kinds(bare))
        for f in info.fields
    )


def query(request: web.Request, model: type[Q]) -> Q:
    """The request's query parameters read into `model`: 400 naming the parameter for a bad one."""
    values: dict[str, Any] = {}
    for name, repeats, kinds in _fields(model):
        given = request.query.getall(name, [])
        if repeats:
            values[name] = [_wire(v, kinds) for v in given]
        elif len(given) > 1:
            raise BadRequest(f"{name} may be given once, got {len(given)} values", field=name)
        elif given:
            values[name] = _wire(given[0], kinds)
    try:
        return msgspec.convert(values, model)
    except msgspec.ValidationError as exc:
        raise _bad(exc, "bad query parameter") from exc


_ID_KINDS = frozenset({mi.IntType})


def path_id(request: web.Request, name: str) -> int:
    """A positive 64-bit id from the URL path: 400 for `abc`, `-1`, `0`, `1e9` or anything past 2**63-1."""
    try:
        value: int = msgspec.convert(_wire(request.match_info[name], _ID_KINDS), Id)
    except msgspec.ValidationError as exc:
        raise _bad(exc, f"{name} must be an id", name) from exc
    return value


async def body(request: web.Request, model: type[Q]) -> Q:
    """A JSON object body read into `model` (no unknown field): 415 for another content type, 400 otherwise."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"the body must be application/json, got {request.content_type or 'none'}",
            content_type=request.content_type,
        )
    raw = await request.read()  # aiohttp raises 413 past client_max_size
    try:
        return msgspec.json.decode(raw, type=model)
    except msgspec.ValidationError as exc:
        raise _bad(exc, "bad body") from exc
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {str(exc)[:120]}") from exc
