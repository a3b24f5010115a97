"""What a delivery carries: the event as compact JSON, and its HMAC-SHA256 signature (stdlib hmac)."""

from __future__ import annotations

import hashlib
import hmac
import json

from scanguard.records import Event

SIGNATURE_HEADER = "X-Scanguard-Signature"
EVENT_ID_HEADER = "X-Scanguard-Event-Id"


def body_of(event: Event) -> bytes:
    """The exact bytes POSTed: {id, at, kind, library_id, job_id, instance, data} as compact JSON."""
    return json.dumps(event.to_dict(), separators=(",", ":"), sort_keys=True, default=str).encode()


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: `sha256=<hex HMAC-SHA256 of the body with the secret>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str) -> bool:
    """Whether `header` is the signature of `body` with `secret` (compared in constant time)."""
    return hmac.compare_digest(sign(body, secret), header)


def headers_for(event: Event, body: bytes, secret: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "scanguard-webhooks/1",
        EVENT_ID_HEADER: str(event.id),
        "X-Scanguard-Event-Kind": event.kind,
        SIGNATURE_HEADER: sign(body, secret),
    }
