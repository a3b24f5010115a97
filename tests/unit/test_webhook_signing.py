"""Issue 10: what a delivery carries, and the README's five-line signature check accepting it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scanguard.records import Event
from scanguard.webhooks import sign, verify
from scanguard.webhooks.signing import body_of, headers_for

pytestmark = pytest.mark.timeout(10)
EVENT = Event(42, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "job.paused", 1, 7, "host:1", {"reason": "user"})


def _readme_verifier() -> Any:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    (snippet,) = [b for b in blocks if "def verified" in b]
    assert len(snippet.strip().splitlines()) <= 5, "five lines of Python"
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # noqa: S102 - our own README's snippet, checked as documentation
    return namespace["verified"]


def test_the_body_is_the_event_as_json_and_the_headers_name_it_and_sign_the_exact_bytes() -> None:
    body = body_of(EVENT)
    assert json.loads(body) == {
        "id": 42,
        "at": "2026-01-02T03:04:05Z",
        "kind": "job.paused",
        "library_id": 1,
        "job_id": 7,
        "instance": "host:1",
        "data": {"reason": "user"},
    }
    headers = headers_for(EVENT, body, "k")
    assert headers["X-Scanguard-Event-Id"] == "42"
    assert headers["X-Scanguard-Signature"] == sign(body, "k")
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", headers["X-Scanguard-Signature"])
    assert headers["Content-Type"] == "application/json"


def test_the_readme_snippet_accepts_a_real_signature_and_refuses_a_changed_body_or_secret() -> None:
    verified = _readme_verifier()
    body = body_of(EVENT)
    signature = sign(body, "s3cret")
    assert verified(body, signature, "s3cret")
    assert verify(body, "s3cret", signature)
    assert not verified(body + b" ", signature, "s3cret")
    assert not verified(body, signature, "other")
    assert not verify(body, "other", signature)
