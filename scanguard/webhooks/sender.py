"""The HTTP side of delivery: aiohttp's client on an asyncio loop, each delivery retried by tenacity."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from scanguard.backoff import Backoff
from scanguard.config import WebhookDeliveryConfig
from scanguard.errors import ConfigError

log = structlog.get_logger("scanguard.webhooks")
FailedAttempt = Callable[[int, str], None]
"""Called on the loop as failed(attempt_number, error) after each attempt that did not get a 2xx."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one delivery ended: a 2xx (its status), or given up after its last attempt (the last error)."""

    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None


class DeliveryFailed(Exception):
    """One attempt did not get a 2xx answer."""


class Sender:
    """Owns one ClientSession and the loop it runs on: the service's loop when given, else a thread of its own.

    Retries are tenacity's, waiting by scanguard's one backoff rule (scanguard/backoff.py): from
    `retry_interval`, doubling, ±20% jitter, never more than `max_retry_interval`; at most `max_attempts`
    attempts; each attempt has `timeout` seconds in all.
    """

    def __init__(self, cfg: WebhookDeliveryConfig, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._cfg = cfg
        self._own_loop = loop is None
        self._loop = loop if loop is not None else asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._running: set[asyncio.Task[Outcome]] = set()
        self._closed = False

    def start(self) -> None:
        if not self._own_loop and not self._loop.is_running():
            raise ConfigError(
                "webhook deliveries need a running event loop (or none, for a loop of their own)"
            )
        if self._own_loop:
            self._thread = threading.Thread(target=self._loop.run_forever, name="webhook-loop", daemon=True)
            self._thread.start()

    def deliver(
        self, url: str, body: bytes, headers: dict[str, str], failed: FailedAttempt
    ) -> concurrent.futures.Future[Outcome]:
        """Start one delivery on the loop; the future ends with its Outcome (or is cancelled at close)."""
        return asyncio.run_coroutine_threadsafe(self._deliver(url, body, headers, failed), self._loop)

    async def _deliver(
        self, url: str, body: bytes, headers: dict[str, str], failed: FailedAttempt
    ) -> Outcome:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        cfg = self._cfg
        attempts, status = 0, 0
        policy = AsyncRetrying(
            stop=stop_after_attempt(cfg.max_attempts),
            wait=Backoff(cfg.retry_interval, cfg.max_retry_interval),
            retry=retry_if_exception_type(DeliveryFailed),
            reraise=True,
        )
        try:
            async for attempt in policy:
                with attempt:
                    attempts += 1
                    try:
                        status = await self._post(url, body, headers)
                    except DeliveryFailed as exc:
                        failed(attempts, str(exc))
                        raise
        except DeliveryFailed as exc:
            return Outcome(False, attempts, error=str(exc))
        finally:
            self._running.discard(task)
        return Outcome(True, attempts, status=status)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._cfg.timeout))
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    return response.status
                raise DeliveryFailed(f"HTTP {response.status} {response.reason or ''}".strip())
        except aiohttp.ClientError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        except TimeoutError as exc:
            raise DeliveryFailed(f"no answer within {self._cfg.timeout:g}s") from exc

    async def _shut(self) -> None:
        running = list(self._running)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=1.0)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def close(self, timeout: float) -> None:
        """Cancel the deliveries in flight (their events stay undelivered: the cursor has not moved) and close."""
        if self._closed:
            return
        self._closed = True
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._loop.create_task(self._shut())  # host code stopping us from the loop itself: cannot wait
        elif self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._shut(), self._loop).result(timeout)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError, RuntimeError) as exc:
                log.warning("webhook.sender_close_failed", error=repr(exc))
        if self._own_loop and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        if self._own_loop and not self._loop.is_running():
            self._loop.close()
