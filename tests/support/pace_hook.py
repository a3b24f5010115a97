"""A fault hook for real processes: every scan batch takes at least a set time, as on slow storage.

Installed with SCANGUARD_TEST_FAULT_HOOK=tests.support.pace_hook:pace_batch and SCANGUARD_TEST_PACE=SECONDS
(and the repository on PYTHONPATH). A test that must watch a scan in motion (its progress bar moving, a
pause landing mid-scan) then does not depend on how fast this machine scans.
"""

from __future__ import annotations

import os
import threading


def pace_batch(operation: str, stage: str) -> None:
    if operation == "commit_batch" and stage == "before_commit":
        threading.Event().wait(float(os.environ.get("SCANGUARD_TEST_PACE", "0.01")))
