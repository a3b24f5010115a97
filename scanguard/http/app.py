"""The app factory: one aiohttp Application over one Runtime, which its single cleanup_ctx starts and stops."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from scanguard.config import Config
from scanguard.errors import ConfigError
from scanguard.http import events, instances, libraries, probes, scanner, webhooks
from scanguard.http.middlewares import (
    Guard,
    auth_middleware,
    documented_queries,
    error_middleware,
    metrics_middleware,
    query_middleware,
)
from scanguard.http.openapi import openapi_document
from scanguard.http.progress import ProgressFeed
from scanguard.http.state import RUNTIME, RuntimeSlot
from scanguard.runtime import Runtime
from scanguard.scope import MAX_HTTP_SCOPE_PATH, MAX_SCOPE_PATHS

__all__ = ["RUNTIME", "create_app"]

log = structlog.get_logger("scanguard.http")


async def _runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the Runtime (if the app owns it) in a thread, and stop it the same way on cleanup."""
    slot = app[RUNTIME]
    loop = asyncio.get_running_loop()
    if slot.runtime is None:
        # webhook deliveries run on this loop (aiohttp's client on the service's loop)
        slot.runtime = await loop.run_in_executor(
            None, functools.partial(Runtime.start, slot.config, loop=loop)
        )
        slot.owned = True
    slot.progress = ProgressFeed(slot.coalesced("current_jobs"), interval=1.0)
    database = slot.runtime.database
    database.open_async()  # the API's reads run on this loop, through the async engine
    try:
        yield
    finally:
        await slot.progress.close()
        # the async engine's connections belong to this loop: closed on it, before it ends
        await database.close_async()
        if slot.owned:
            # Runtime.stop pauses this process's running scans with reason "shutdown"
            await loop.run_in_executor(None, slot.runtime.stop)


async def _close_streams(app: web.Application) -> None:
    """Shutdown begins: let the SSE streams end so that their connections close without the grace wait."""
    app[RUNTIME].closing.set()


MAX_REQUEST_LINE = 8190 + MAX_SCOPE_PATHS * (len("&path=") + 12 * MAX_HTTP_SCOPE_PATH)
"""aiohttp's default request line (8190 bytes), plus room for the longest scoped start the document allows:
a longer line is refused by aiohttp with a plain-text 400, off the document."""


def create_app(target: Runtime | Config, *, sse_heartbeat: float = 15.0) -> web.Application:
    """The admin app. Given a Config it starts and stops its own Runtime; given a started Runtime, it borrows it.

    The bearer token is `config.http.admin_token`, which must be set (`scanguard serve` fills it in).
    """
    slot = RuntimeSlot(target.config, target) if isinstance(target, Runtime) else RuntimeSlot(target)
    slot.sse_heartbeat = sse_heartbeat
    cfg = slot.config.http
    if not cfg.admin_token:
        raise ConfigError(
            "http.admin_token must be set to serve the admin API (or set SCANGUARD_ADMIN_TOKEN)"
        )
    guard = Guard(cfg.admin_token.encode("utf-8", "surrogateescape"), cfg.max_body_bytes)
    app = web.Application(
        client_max_size=cfg.max_body_bytes,
        handler_args={"max_line_size": MAX_REQUEST_LINE},
        middlewares=[
            metrics_middleware(slot.metrics),
            error_middleware,
            auth_middleware(guard),
            query_middleware(documented_queries(openapi_document())),
        ],
    )
    app[RUNTIME] = slot
    app.cleanup_ctx.append(_runtime_ctx)
    app.on_shutdown.append(_close_streams)
    for module in (scanner, libraries, events, probes, instances, webhooks):
        app.router.add_routes(module.routes)
    return app
