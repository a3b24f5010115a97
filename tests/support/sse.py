"""A Server-Sent Events reader for tests: a thread collects frames, with the wall-clock time each arrived."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPResponse
from typing import Any


@dataclass(frozen=True, slots=True)
class Frame:
    """One SSE frame as it arrived."""

    event: str
    id: int | None
    data: Any
    arrived: datetime


class FrameParser:
    """Owns the fields of the frame being read: fed one line at a time, it hands out each complete frame."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}

    def feed(self, raw: str) -> Frame | None:
        """The frame this line completes (its blank line), or None; comments and data-less frames are skipped."""
        line = raw.rstrip("\n").rstrip("\r")
        fields = self._fields
        if line:
            if not line.startswith(":"):
                key, _, value = line.partition(":")
                fields[key] = fields.get(key, "") + value.removeprefix(" ")
            return None
        self._fields = {}
        if "data" not in fields:
            return None
        return Frame(
            fields.get("event", "message"),
            int(fields["id"]) if fields.get("id", "").isdigit() else None,
            json.loads(fields["data"]),
            datetime.now(UTC),
        )


class SseReader:
    """Owns one streaming connection and the thread that reads it, until closed."""

    def __init__(self, url: str, token: str, headers: dict[str, str] | None = None) -> None:
        request = urllib.request.Request(  # noqa: S310 - our own local server
            url,
            headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream", **(headers or {})},
        )
        self._response: HTTPResponse = urllib.request.urlopen(request, timeout=30)  # noqa: S310
        self.frames: list[Frame] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="sse-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        parser = FrameParser()
        with contextlib.suppress(OSError, ValueError):
            for raw in self._response:
                frame = parser.feed(raw.decode())
                if frame is not None:
                    with self._lock:
                        self.frames.append(frame)

    def snapshot(self) -> list[Frame]:
        with self._lock:
            return list(self.frames)

    def events(self) -> list[Frame]:
        return [f for f in self.snapshot() if f.id is not None]

    def close(self, timeout: float = 10) -> None:
        """Call after the server went away (its end of the stream closes it); then the reader ends."""
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._response.close()
