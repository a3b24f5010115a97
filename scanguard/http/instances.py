"""The instances route: which processes serve this database, whether each is live, and what each runs."""

from __future__ import annotations

from aiohttp import web

from scanguard.http.schemas import InstanceList, reply
from scanguard.http.state import runtime_of

routes = web.RouteTableDef()


@routes.get("/api/admin/instances", name="list_instances")
async def list_instances(request: web.Request) -> web.Response:
    """Every registered instance; `live` is false once its heartbeat is older than the lease TTL."""
    return reply(InstanceList(tuple(await runtime_of(request).aio.instances())))
