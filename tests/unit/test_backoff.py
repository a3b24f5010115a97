"""scanguard's one backoff rule: each attempt doubles within its jitter, never past its cap, for ever."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

import scanguard
from scanguard.backoff import BUSY_DATABASE, RECONNECT, Backoff, backoff_delay

pytestmark = pytest.mark.timeout(10)
SAMPLES = 300


@pytest.mark.parametrize("policy", [Backoff(0.05), Backoff(1.0, 300.0), BUSY_DATABASE, RECONNECT])
def test_each_attempt_doubles_within_its_jitter_and_never_passes_the_cap(policy: Backoff) -> None:
    for attempt in range(12):
        delays = [policy.delay(attempt) for _ in range(SAMPLES)]
        middle = policy.first * 2**attempt
        low, high = middle * (1 - policy.jitter), middle * (1 + policy.jitter)
        if policy.cap is not None:
            low, high = min(low, policy.cap), min(high, policy.cap)
        assert all(low - 1e-12 <= d <= high + 1e-12 for d in delays), (attempt, min(delays), max(delays))
        if policy.cap is None or high < policy.cap:
            assert max(delays) - min(delays) > 0, "jittered: retries of many clients spread out"


def test_an_attempt_after_a_long_outage_waits_the_cap_instead_of_overflowing() -> None:
    """The listener counts reconnects without end: after ~35 minutes of a lost server, 2**attempt once
    overflowed a float (OverflowError) and ended its thread."""
    assert 1.0 <= RECONNECT.delay(5_000) <= 2.0
    assert Backoff(0.05).delay(10**9) > 0


def test_the_restart_rule_keeps_its_documented_20_percent() -> None:
    delays = [backoff_delay(5.0, 0) for _ in range(SAMPLES)]
    assert all(4.0 <= d <= 6.0 for d in delays)
    assert all(backoff_delay(5.0, 30, cap=40.0) <= 40.0 for _ in range(SAMPLES))


def test_tenacity_waits_by_the_same_rule() -> None:
    slept: list[float] = []
    policy = Backoff(0.01, 0.05)

    def fail_six_times() -> None:
        for attempt in Retrying(
            retry=retry_if_exception_type(ValueError),
            stop=stop_after_attempt(6),
            wait=policy,
            sleep=slept.append,
            reraise=True,
        ):
            with attempt:
                raise ValueError("again")

    with pytest.raises(ValueError, match="again"):
        fail_six_times()
    assert len(slept) == 5
    for n, delay in enumerate(slept):
        assert min(0.01 * 2**n * 0.8, 0.05) - 1e-12 <= delay <= min(0.01 * 2**n * 1.2, 0.05) + 1e-12


def test_no_module_but_backoff_draws_its_own_retry_delays() -> None:
    """One policy: nothing else in the package imports `random` or a tenacity wait strategy."""
    package = Path(scanguard.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "backoff.py" and path.parent == package:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            offenders += [
                f"{path.relative_to(package)}: {name}"
                for name in names
                if name == "random" or name.startswith(("random.", "tenacity.wait"))
            ]
    assert offenders == []
