"""Library routes: add (an existing directory inside allowed_roots), list, get, switch watching, remove, and
its files, paged."""

from __future__ import annotations

from aiohttp import web

from scanguard.errors import BadRequest, NotFound
from scanguard.http.params import json_object, paging, path_id, query_bool
from scanguard.http.state import runtime_of
from scanguard.validation import MAX_PATH, is_blank

routes = web.RouteTableDef()
BASE = "/api/admin/libraries"
MAX_PATH_BYTES = 4096
MAX_COMPONENT = 255


def _checked_path(path: str) -> str:
    """Reject before the filesystem sees it what the document rules out (blank, NUL, over 4096 characters:
    400), and what no filesystem here can hold (over 4096 bytes, or a name over 255: no such directory, 404)."""
    if is_blank(path):
        raise BadRequest("path must be a non-empty string", field="path")
    if "\x00" in path:
        raise BadRequest("path must not contain NUL", field="path")
    if len(path) > MAX_PATH:
        raise BadRequest(f"path must be at most {MAX_PATH} characters", field="path")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRequest("path must be valid Unicode (no lone surrogates)", field="path") from exc
    if len(encoded) > MAX_PATH_BYTES or any(len(part) > MAX_COMPONENT for part in encoded.split(b"/")):
        raise NotFound("directory", path[:200])
    return path


@routes.post(BASE, name="add_library")
async def add_library(request: web.Request) -> web.Response:
    body = await json_object(
        request, required={"path": str}, optional={"name": str, "kind": str, "watch": bool}
    )
    rt = runtime_of(request)
    name = body.get("name")
    if name is not None:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadRequest("name must be valid Unicode (no lone surrogates)", field="name") from exc
    library = await rt.aio.add_library(
        _checked_path(body["path"]), name, body.get("kind", "mixed"), watch=body.get("watch")
    )
    return web.json_response({"library": library.to_dict()}, status=201)


@routes.get(BASE, name="list_libraries")
async def list_libraries(request: web.Request) -> web.Response:
    libraries = await runtime_of(request).aio.list_libraries()
    return web.json_response({"libraries": [library.to_dict() for library in libraries]})


@routes.get(BASE + "/{library_id}", name="get_library")
async def get_library(request: web.Request) -> web.Response:
    library = await runtime_of(request).aio.get_library(path_id(request, "library_id"))
    return web.json_response({"library": library.to_dict()})


@routes.patch(BASE + "/{library_id}", name="update_library")
async def update_library(request: web.Request) -> web.Response:
    """{"watch": bool}: switch the library's watching on or off."""
    library_id = path_id(request, "library_id")
    body = await json_object(request, required={"watch": bool}, optional={})
    library = await runtime_of(request).aio.set_watch(library_id, body["watch"])
    return web.json_response({"library": library.to_dict()})


@routes.delete(BASE + "/{library_id}", name="remove_library")
async def remove_library(request: web.Request) -> web.Response:
    removed = await runtime_of(request).aio.remove_library(path_id(request, "library_id"))
    return web.json_response(removed.to_dict())


@routes.get(BASE + "/{library_id}/files", name="list_files")
async def list_files(request: web.Request) -> web.Response:
    library_id = path_id(request, "library_id")
    limit, offset = paging(request)
    errors = query_bool(request, "errors")
    page = await runtime_of(request).aio.list_files(library_id, limit=limit, offset=offset, errors=errors)
    return web.json_response(
        {"files": [f.to_dict() for f in page.items], "total": page.total, "limit": limit, "offset": offset}
    )
