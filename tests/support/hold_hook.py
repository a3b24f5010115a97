"""A fault hook for real processes: hold one batch's transaction open until the test releases it.

Installed with SCANGUARD_TEST_FAULT_HOOK=tests.support.hold_hook:hold_batch and SCANGUARD_TEST_HOLD_DIR=DIR.
When DIR/hold exists, the next batch renames it to DIR/holding (so only one batch holds) just before its
commit, with its row locks taken, and waits there until DIR/release exists (bounded, for safety).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

HOLD_LIMIT = 120.0


def hold_batch(operation: str, stage: str) -> None:
    if operation != "commit_batch" or stage != "before_commit":
        return
    folder = Path(os.environ["SCANGUARD_TEST_HOLD_DIR"])
    try:
        (folder / "hold").rename(folder / "holding")
    except FileNotFoundError:
        return
    pause = threading.Event()
    deadline = time.monotonic() + HOLD_LIMIT
    while not (folder / "release").exists() and time.monotonic() < deadline:
        pause.wait(0.02)
