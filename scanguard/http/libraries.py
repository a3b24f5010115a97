"""Library routes: add (an existing directory inside allowed_roots), list, get, switch watching, remove, and
its files, paged."""

from __future__ import annotations

from aiohttp import web

from scanguard.errors import BadRequest, NotFound
from scanguard.http.params import FilesQuery, LibraryPatch, NewLibrary, body, path_id, query
from scanguard.http.schemas import FilePage, LibraryEnvelope, LibraryList, reply
from scanguard.http.state import runtime_of

routes = web.RouteTableDef()
BASE = "/api/admin/libraries"
MAX_PATH_BYTES = 4096
MAX_COMPONENT = 255


def _checked_path(path: str) -> str:
    """Reject before the filesystem sees it what no filesystem here can hold: a lone surrogate (400), over
    4096 bytes, or a name over 255 (no such directory, 404). Blank, NUL and length are NewLibrary's bounds."""
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRequest("path must be valid Unicode (no lone surrogates)", field="path") from exc
    if len(encoded) > MAX_PATH_BYTES or any(len(part) > MAX_COMPONENT for part in encoded.split(b"/")):
        raise NotFound("directory", path[:200])
    return path


@routes.post(BASE, name="add_library")
async def add_library(request: web.Request) -> web.Response:
    new = await body(request, NewLibrary)
    if new.name is not None:
        try:
            new.name.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadRequest("name must be valid Unicode (no lone surrogates)", field="name") from exc
    library = await runtime_of(request).aio.add_library(
        _checked_path(new.path), new.name, new.kind, watch=new.watch
    )
    return reply(LibraryEnvelope(library), 201)


@routes.get(BASE, name="list_libraries")
async def list_libraries(request: web.Request) -> web.Response:
    return reply(LibraryList(tuple(await runtime_of(request).aio.list_libraries())))


@routes.get(BASE + "/{library_id}", name="get_library")
async def get_library(request: web.Request) -> web.Response:
    return reply(LibraryEnvelope(await runtime_of(request).aio.get_library(path_id(request, "library_id"))))


@routes.patch(BASE + "/{library_id}", name="update_library")
async def update_library(request: web.Request) -> web.Response:
    """{"watch": bool}: switch the library's watching on or off."""
    library_id = path_id(request, "library_id")
    patch = await body(request, LibraryPatch)
    return reply(LibraryEnvelope(await runtime_of(request).aio.set_watch(library_id, patch.watch)))


@routes.delete(BASE + "/{library_id}", name="remove_library")
async def remove_library(request: web.Request) -> web.Response:
    return reply(await runtime_of(request).aio.remove_library(path_id(request, "library_id")))


@routes.get(BASE + "/{library_id}/files", name="list_files")
async def list_files(request: web.Request) -> web.Response:
    library_id = path_id(request, "library_id")
    asked = query(request, FilesQuery)
    page = await runtime_of(request).aio.list_files(
        library_id, limit=asked.limit, offset=asked.offset, errors=asked.errors
    )
    return reply(FilePage(page.total, asked.limit, asked.offset, files=page.items))
