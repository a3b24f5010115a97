"""The admin HTTP surface: an aiohttp app over the Runtime — routes, auth, errors, SSE, dashboard, OpenAPI."""

from scanguard.http.app import RUNTIME, create_app

__all__ = ["RUNTIME", "create_app"]
