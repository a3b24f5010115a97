"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 that records each POST and can fail some."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from scanguard.webhooks import verify


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST as the receiver saw it: the exact body, its headers, and what it answered."""

    body: bytes
    headers: dict[str, str]
    status: int

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def signed_with(self, secret: str) -> bool:
        return verify(self.body, secret, self.headers.get("X-Scanguard-Signature", ""))


class Receiver:
    """Owns one HTTP server thread; answers 500 to the first `fail_first` POSTs, then 204.

    With `hang=True` it reads each POST and then answers nothing until `release()` (a slow receiver).
    """

    def __init__(self, fail_first: int = 0, *, hang: bool = False) -> None:
        self.fail_first = fail_first
        self.released = threading.Event()
        if not hang:
            self.released.set()
        self.deliveries: list[Delivery] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._changed:
                    status = 500 if len(receiver.deliveries) < receiver.fail_first else 204
                    receiver.deliveries.append(Delivery(body, dict(self.headers.items()), status))
                    receiver._changed.notify_all()
                receiver.released.wait(30)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def accepted(self) -> list[Delivery]:
        with self._changed:
            return [d for d in self.deliveries if d.status < 300]

    def wait_accepted(self, event_ids: set[int], timeout: float) -> list[Delivery]:
        """Wait until every id in `event_ids` was accepted at least once (a deadline, woken on each POST)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                seen = {d.event["id"] for d in self.deliveries if d.status < 300}
                if event_ids <= seen:
                    return [d for d in self.deliveries if d.status < 300]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"never delivered within {timeout:g}s: {sorted(event_ids - seen)}")
                self._changed.wait(remaining)

    def wait_posts(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.deliveries) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"fewer than {count} POSTs within {timeout:g}s: {len(self.deliveries)}"
                    )
                self._changed.wait(remaining)

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a port bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
