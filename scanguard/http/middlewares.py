"""The middlewares: request metrics, the one JSON error shape, and the bearer token on /api/admin."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from scanguard.errors import BadRequest, ScanguardError, Unauthorized

log = structlog.get_logger("scanguard.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ADMIN_PREFIX = "/api/admin"
STREAM_ROUTE = "events_stream"  # the one route that also takes ?token= (EventSource cannot send headers)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    411: "length_required",
    413: "body_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "too_many_requests",
    431: "headers_too_large",
}


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


class HttpMetrics:
    """Request counts and latencies per route, in the app's own registry (served beside the Runtime's)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "scanguard_http_requests",
            "HTTP requests answered, by route template, method and status",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "scanguard_http_request_duration_seconds",
            "HTTP request latency by route template",
            ("route", "method"),
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )


@dataclass(frozen=True, slots=True)
class Guard:
    """What the auth middleware checks against: the token and the body limit."""

    token: bytes
    max_body_bytes: int


def _route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def metrics_middleware(metrics: HttpMetrics) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            status = exc.status
            raise
        else:
            status = response.status
            return response
        finally:
            route = _route_label(request)
            metrics.requests.labels(route, request.method, str(status)).inc()
            metrics.latency.labels(route, request.method).observe(time.perf_counter() - started)

    return middleware


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to `{"error": {"code", "message", "details"}}`; no stack trace reaches a client."""
    try:
        return await handler(request)
    except ScanguardError as exc:
        if exc.status >= 500:
            log.warning(
                "http.error", method=request.method, path=request.path, code=exc.code, error=exc.message
            )
        headers = {"WWW-Authenticate": 'Bearer realm="scanguard"'} if exc.status == 401 else None
        return web.json_response(exc.to_dict(), status=exc.status, headers=headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = HTTP_CODES.get(exc.status, f"http_{exc.status}")
        message = exc.text if exc.text and exc.status == 413 else HTTPStatus(exc.status).phrase
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate")}
        details: dict[str, Any] = {}
        if exc.status == 405:
            details["allowed"] = sorted(exc.headers.get("Allow", "").split(","))
        return web.json_response(
            error_body(code, message or code, **details), status=exc.status, headers=headers
        )
    except Exception:  # the boundary: anything unexpected is logged here and answered as a plain 500
        log.exception("http.internal_error", method=request.method, path=request.path)
        return web.json_response(error_body("internal", "internal server error"), status=500)


def _is_admin(request: web.Request) -> bool:
    for path in (request.path, request.rel_url.raw_path, request.raw_path):
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            return True
    return False


def _presented_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.match_info.route.name == STREAM_ROUTE:
        values = request.query.getall("token", [])
        if len(values) == 1:
            return values[0]
    return None


def auth_middleware(guard: Guard) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Bearer token on every /api/admin path, known or not (401 before 404); then the body limit."""
        if _is_admin(request):
            presented = _presented_token(request)
            if presented is None:
                raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
            if not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), guard.token):
                raise Unauthorized("the bearer token is not valid")
        length = request.content_length
        if length is not None and length > guard.max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=guard.max_body_bytes, actual_size=length)
        return await handler(request)

    return middleware


def documented_queries(document: dict[str, Any]) -> dict[tuple[str, str], frozenset[str]]:
    """{(METHOD, path template): the query parameters the OpenAPI document declares for it}."""
    return {
        (method.upper(), path): frozenset(p["name"] for p in op.get("parameters", ()) if p["in"] == "query")
        for path, item in document["paths"].items()
        for method, op in item.items()
    }


def query_middleware(allowed: dict[tuple[str, str], frozenset[str]]) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """On /api/admin, a query parameter the document does not declare for the route is a 400, not
        silently ignored (a client's typo would otherwise read as "no filter")."""
        resource = request.match_info.route.resource if _is_admin(request) else None
        method = "GET" if request.method == "HEAD" else request.method
        known = allowed.get((method, resource.canonical)) if resource is not None else None
        if known is not None and request.query:
            unknown = sorted(set(request.query) - known)
            if unknown:
                raise BadRequest(
                    f"unknown query parameter(s): {', '.join(unknown)[:200]}", parameters=unknown[:20]
                )
        return await handler(request)

    return middleware
