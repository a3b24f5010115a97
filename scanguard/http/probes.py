"""Unauthenticated routes: liveness, readiness, Prometheus metrics, the OpenAPI document and the dashboard."""

from __future__ import annotations

import asyncio
import time
from importlib import resources

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from scanguard.errors import ScanguardError
from scanguard.http.openapi import openapi_document
from scanguard.http.schemas import Health, Readiness, reply
from scanguard.http.state import slot_of
from scanguard.metrics import exposition
from scanguard.runtime import Runtime

routes = web.RouteTableDef()
READY_TIMEOUT = 5.0


@routes.get("/healthz", name="healthz")
async def healthz(_request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return reply(Health("ok"))


def _ping(rt: Runtime, timeout: float) -> float:
    return rt.store.ping(timeout)


@routes.get("/readyz", name="readyz")
async def readyz(request: web.Request) -> web.Response:
    """The runtime runs and its store answers a query: 503 `not_ready` otherwise."""
    slot = slot_of(request)
    started = time.perf_counter()
    try:
        rt = slot.get()
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.run_in_executor(None, _ping, rt, READY_TIMEOUT), READY_TIMEOUT)
    except (ScanguardError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "message", None) or type(exc).__name__
        return web.json_response(
            {
                "error": {
                    "code": "not_ready",
                    "message": f"the store is not reachable: {reason}",
                    "details": {},
                }
            },
            status=503,
        )
    except Exception as exc:  # noqa: BLE001 - any driver failure means "not ready", never a 500
        return web.json_response(
            {
                "error": {
                    "code": "not_ready",
                    "message": f"the store is not reachable: {type(exc).__name__}",
                    "details": {},
                }
            },
            status=503,
        )
    return reply(Readiness("ready", round((time.perf_counter() - started) * 1000, 2)))


@routes.get("/metrics", name="metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: the Runtime's registry (when it has one) and the HTTP layer's own."""
    slot = slot_of(request)
    runtime_metrics = getattr(slot.runtime, "metrics", None)
    registry = getattr(runtime_metrics, "registry", None)
    registries = [registry, slot.metrics.registry] if registry is not None else [slot.metrics.registry]
    return web.Response(body=exposition(registries), headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/api/openapi.json", name="openapi")
async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def _static(name: str) -> bytes:
    return resources.files("scanguard.http").joinpath("static", name).read_bytes()


# The dashboard loads only its own script and style sheet and talks only to this origin; no inline script
# or style runs (an injected one included), no plugin, no <base>, and no other site may frame it.
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'; frame-ancestors 'none'"
)
HARDENED = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _asset(name: str, content_type: str) -> web.Response:
    return web.Response(
        body=_static(name),
        content_type=content_type,
        charset="utf-8",
        headers={**HARDENED, "Content-Security-Policy": DASHBOARD_CSP},
    )


@routes.get("/", name="dashboard")
async def dashboard(_request: web.Request) -> web.Response:
    return _asset("index.html", "text/html")


@routes.get("/dashboard.js", name="dashboard_script")
async def dashboard_script(_request: web.Request) -> web.Response:
    return _asset("dashboard.js", "text/javascript")


@routes.get("/dashboard.css", name="dashboard_style")
async def dashboard_style(_request: web.Request) -> web.Response:
    return _asset("dashboard.css", "text/css")
