"""When to try again: exponential backoff with jitter, capped (supervised restarts, store recovery)."""

from __future__ import annotations

import random


def backoff_delay(base: float, attempt: int, cap: float | None = None) -> float:
    """`base * 2**attempt` seconds with ±20% jitter; never more than `cap` (when given) plus its jitter."""
    delay = base * float(2 ** max(0, attempt))
    if cap is not None:
        delay = min(delay, cap)
    return delay * random.uniform(0.8, 1.2)
