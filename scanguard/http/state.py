"""The app's typed state: the Runtime slot found through the `RUNTIME` AppKey."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from scanguard.config import Config
from scanguard.errors import RuntimeStopped
from scanguard.http.coalesce import Coalesced, SharedReads
from scanguard.http.middlewares import HttpMetrics
from scanguard.http.progress import ProgressFeed
from scanguard.runtime import Runtime
from scanguard.store.reads import Read

Q = TypeVar("Q", bound=Read[Any])
R = TypeVar("R")
Render = Callable[[Q, Any], object]  # the answer, as msgspec encodes it (scanguard.http.schemas)
"""What a route answers for a read and its result, as a JSON-able value (a module-level function: the
function is part of what identical requests share)."""


@dataclass(slots=True)
class RuntimeSlot:
    """The app's Runtime: given at creation, or filled by the cleanup_ctx once it has started one."""

    config: Config
    runtime: Runtime | None = None
    owned: bool = False
    metrics: HttpMetrics = field(default_factory=HttpMetrics)
    sse_heartbeat: float = 15.0
    progress: ProgressFeed | None = None
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    reads: dict[str, Coalesced[Any]] = field(default_factory=dict)
    bodies: SharedReads = field(init=False)

    def __post_init__(self) -> None:
        self.bodies = SharedReads(self._body)

    async def json(self, query: Q, render: Render[Q]) -> web.Response:
        """The JSON answer `render(query, result)` to a declared read, shared with every identical request
        that arrives while it is read (one read and one encoding for all of them, none older than the
        request: see scanguard.http.coalesce)."""
        body: bytes = await self.bodies((render, query))
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    async def _body(self, key: tuple[Render[Any], Read[Any]]) -> bytes:
        render, query = key
        result = await self.get().aio.read(query)
        return msgspec.json.encode(render(query, result))

    def coalesced(self, name: str) -> Coalesced[Any]:
        """The shared, coalesced form of the Runtime read `name` (current_jobs, safeguard_status, ...)."""
        read = self.reads.get(name)
        if read is None:

            async def call() -> Any:
                return await getattr(self.get().aio, name)()

            read = self.reads[name] = Coalesced(call)
        return read

    def get(self) -> Runtime:
        if self.runtime is None or not self.runtime.running:
            raise RuntimeStopped()
        return self.runtime


RUNTIME = web.AppKey("scanguard.runtime", RuntimeSlot)


def runtime_of(request: web.Request) -> Runtime:
    """The running Runtime behind this request (503 runtime_stopped while starting or stopping)."""
    return request.app[RUNTIME].get()


def slot_of(request: web.Request) -> RuntimeSlot:
    return request.app[RUNTIME]
