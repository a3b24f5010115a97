"""An aiohttp app served in this process, on a loop thread of its own, over a real 127.0.0.1 socket."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web


class InProcessServer:
    """An aiohttp app on 127.0.0.1:<free port>, run by an event loop on a background thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-http", daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(app, access_log=None)
        self.url = self._call(self._start())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def _start(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
