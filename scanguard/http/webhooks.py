"""The webhooks route: each webhook's delivery state (URL, kinds, cursor, lag, failures; never the secret)."""

from __future__ import annotations

from aiohttp import web

from scanguard.http.state import runtime_of

routes = web.RouteTableDef()


@routes.get("/api/admin/webhooks", name="list_webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    return web.json_response({"webhooks": await runtime_of(request).aio.webhooks()})
