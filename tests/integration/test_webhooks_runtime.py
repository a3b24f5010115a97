"""Issue 10 in-process: a hanging receiver holds back neither another receiver, nor a scan, nor stop()."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import scanguard
from tests.support.db import db_rows
from tests.support.receiver import Receiver
from tests.support.trees import build_tree

pytestmark = pytest.mark.timeout(90)
DELIVERY = {"poll_interval": 0.2, "retry_interval": 0.05, "max_retry_interval": 0.3, "timeout": 30}


def test_a_receiver_that_never_answers_holds_back_neither_the_other_receiver_nor_the_scan_nor_stop(
    tmp_path: Path,
    sqlite_url: str,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """The hanging POST waits on the sender's loop; the actors, the scan and shutdown go on without it."""
    slow, fast = Receiver(hang=True), Receiver()
    try:
        hooks: list[dict[str, Any]] = [
            {"name": "slow", "url": slow.url, "secret": "a", "kinds": ["job.", "library."]},
            {"name": "fast", "url": fast.url, "secret": "b", "kinds": ["job."]},
        ]
        rt = runtime_factory(make_config(webhook_delivery=DELIVERY), webhooks=hooks)
        root = tmp_path / "media"
        build_tree(root, 200, 0, hidden=False, symlinks=False)
        job = rt.start_scan(rt.add_library(root).id)
        assert rt.wait_for_job(job.id, timeout=60).status == "completed"

        rows = db_rows(sqlite_url, "SELECT id FROM events WHERE kind LIKE 'job.%' ORDER BY id")
        accepted = fast.wait_accepted({int(i) for (i,) in rows}, timeout=30)
        assert [d.event["kind"] for d in accepted] == ["job.started", "job.completed"]
        assert all(d.signed_with("b") for d in accepted)
        slow.wait_posts(1, timeout=10)  # the slow one got its first event and is sitting on it
        assert [d.event["kind"] for d in slow.deliveries] == ["library.added"]
        state = {h["name"]: h for h in rt.webhooks()}
        assert state["slow"]["lag"] == 3
        assert state["slow"]["delivered"] == 0

        started = time.monotonic()
        rt.stop()
        took = time.monotonic() - started
        assert took < 5, f"stop() waited {took:.1f}s for a receiver"
        assert not slow.released.is_set(), "stopped while the POST still hung"
        cursors = db_rows(sqlite_url, "SELECT name, cursor, owner FROM webhook_cursors ORDER BY name")
        assert cursors == [("fast", rows[-1][0], None), ("slow", 0, None)], "unacknowledged: sent again later"
    finally:
        slow.close()
        fast.close()
