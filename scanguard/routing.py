"""Routing a call to the actor that owns it, for the Runtime and its awaitable twin alike: an ask bounded
by a timeout, with pykka's timeout and dead actor as ScanguardErrors; a control operation through its
library's mailbox, counted and timed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pykka

from scanguard.errors import OperationTimeout, RuntimeStopped, ScanguardError

if TYPE_CHECKING:
    from scanguard.control import Request
    from scanguard.system import System


def ask(ref: pykka.ActorRef[Any], message: Any, op: str, timeout: float) -> Any:
    """The actor's answer within `timeout`: OperationTimeout past it, RuntimeStopped from a stopped actor."""
    try:
        return ref.ask(message, timeout=timeout)
    except pykka.Timeout as exc:
        raise OperationTimeout(op, timeout) from exc
    except pykka.ActorDeadError as exc:
        raise RuntimeStopped(f"{op}: the runtime is stopping") from exc


def operate(system: System, request: Request) -> Any:
    """A safeguarded operation through its library's mailbox, counted and timed for health and metrics;
    one its pre-flight read refused is answered at once (without a write, never blocking)."""
    op, metrics = request.op, system.core.metrics
    started = time.perf_counter()
    outcome = "failed"
    try:
        if request.refused is not None:
            raise request.refused
        library = system.libraries.get(request.library_id)
        result = ask(library, request.message, op, system.core.config.safeguards.operation_timeout)
    except OperationTimeout:
        metrics.operation_timeouts.labels(op).inc()
        metrics.lock_timeouts.inc()
        raise
    except ScanguardError as exc:
        outcome = "rejected" if exc.status < 500 else "failed"
        raise
    else:
        outcome = "ok"
        return result
    finally:
        metrics.operations.labels(op, outcome).inc()
        metrics.operation_seconds.labels(op).observe(time.perf_counter() - started)
