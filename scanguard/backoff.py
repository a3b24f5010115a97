"""When to try again: scanguard's one backoff rule — exponential, jittered, capped — for every retry.

Attempt n (counted from 0) waits `first * 2**n`, spread by ±`jitter` (a fraction of it), never more than
`cap`. Who uses it:
- supervised restarts and the watchdog's resume of store-paused scans schedule a later message with
  `delay` (an actor never sleeps);
- a busy database is retried by tenacity's loops (`Retrying`, `AsyncRetrying`), and webhook deliveries
  likewise: a Backoff is their `wait`;
- the event listener waits `delay` between reconnects (its wait also ends when it is stopped).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tenacity import RetryCallState

MAX_DOUBLINGS = 64  # 2**64 times any first delay is past every cap: beyond it the float would overflow


@dataclass(frozen=True, slots=True)
class Backoff:
    """One backoff policy: the first delay, the cap (None: none), and the jitter (±fraction)."""

    first: float
    cap: float | None = None
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (0 for the first failure)."""
        doublings = min(max(0, attempt), MAX_DOUBLINGS)
        spread = random.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        delay = self.first * 2.0**doublings * spread
        return delay if self.cap is None else min(delay, self.cap)

    def __call__(self, state: RetryCallState) -> float:
        """tenacity's `wait`: the delay after the attempt `state` describes (tenacity counts from 1)."""
        return self.delay(state.attempt_number - 1)


BUSY_DATABASE = Backoff(first=0.02, cap=2.0, jitter=0.5)
"""A wait for another writer's lock that gave up: tried again soon, spread wide (writers contend)."""

RECONNECT = Backoff(first=0.05, cap=2.0, jitter=0.5)
"""The event listener's reconnects after its connection was lost."""


def jittered(period: float, spread: float = 0.25) -> float:
    """A periodic wait spread by ±`spread` of itself, so that many libraries' backstop rescans do not
    line up (Syncthing spreads its rescans the same 0.75-1.25x)."""
    return Backoff(period, jitter=spread).delay(0)


def backoff_delay(base: float, attempt: int, cap: float | None = None) -> float:
    """`base * 2**attempt` seconds with ±20% jitter, never more than `cap` (supervised restarts, the
    watchdog's store recovery)."""
    return Backoff(base, cap).delay(attempt)
