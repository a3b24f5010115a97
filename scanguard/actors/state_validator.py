"""The StateValidator: makes live actors and database rows agree, in both directions, every interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from scanguard.actors.library import Fix, Reconcile
from scanguard.actors.supervisor import LiveDetail, Supervised
from scanguard.actors.ticking import Collaborators, PeriodicActor, Tick
from scanguard.errors import ScanguardError
from scanguard.store.reads import ALL, ListJobs

log = structlog.get_logger("scanguard.validator")


@dataclass(frozen=True, slots=True)
class Validate:
    """Validate now; the reply is a ValidationReport."""

    source: str = "manual"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The mismatches one pass found and fixed."""

    fixes: tuple[Fix, ...] = ()
    errors: tuple[str, ...] = ()


class StateValidator(PeriodicActor):
    """Owns the memory-vs-database check; each library's fix runs inside that library's mailbox."""

    def __init__(self, parts: Collaborators) -> None:
        super().__init__(parts, parts.config.safeguards.state_validation_interval, "validator")
        self.passes = 0
        self.last: ValidationReport = ValidationReport()

    def on_receive(self, message: Any) -> Any:
        match message:
            case Tick():
                return self._validate("tick")
            case Validate(source):
                return self._validate(source)
        return super().on_receive(message)

    def _suspects(self) -> set[int]:
        """Libraries where memory and database seem to disagree (confirmed inside each library's turn)."""
        supervised: Supervised = self.supervisor.ask(
            LiveDetail(), block=True, timeout=self.config.safeguards.operation_timeout
        )
        running = self.store.read(ListJobs(("running",), limit=ALL)).items
        return supervised.against(running, self.instance).libraries

    def _validate(self, source: str) -> ValidationReport:
        self.passes += 1
        fixes: list[Fix] = []
        errors: list[str] = []
        try:
            suspects = self._suspects()
        except (ScanguardError, pykka.Timeout) as exc:
            self.last = ValidationReport((), (str(exc),))
            return self.last
        for library_id in sorted(suspects):
            try:
                fixes.extend(
                    self.library(library_id).ask(
                        Reconcile(source), block=True, timeout=self.config.safeguards.operation_timeout
                    )
                )
            except (ScanguardError, pykka.Timeout) as exc:
                errors.append(f"library {library_id}: {exc}")
        for fix in fixes:
            self.metrics.mismatches.labels(fix.direction).inc()
        if fixes:
            log.warning(
                "validator.fixed", count=len(fixes), fixes=[(f.job_id, f.direction, f.action) for f in fixes]
            )
        self.last = ValidationReport(tuple(fixes), tuple(errors))
        return self.last

    def stats(self) -> dict[str, Any]:
        return {
            "passes": self.passes,
            "last_fixes": [
                {"job_id": f.job_id, "direction": f.direction, "action": f.action} for f in self.last.fixes
            ],
            "last_errors": list(self.last.errors),
        }
