"""The CleanupScheduler: retention in bounded batches every interval, and the emergency cleanup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from scanguard.actors.library import AdoptOrphan, Fix, Reconcile
from scanguard.actors.supervisor import LiveDetail, Supervised
from scanguard.actors.ticking import Collaborators, PeriodicActor, Tick
from scanguard.control import PauseScan
from scanguard.errors import Conflict, EmergencyCleanupDisabled, NotFound, ScanguardError
from scanguard.ownership import abandoned, quiet_seconds
from scanguard.store.maintenance import Removed
from scanguard.store.reads import ActiveJobs, ListLibraries, RunningWithLeases

log = structlog.get_logger("scanguard.cleanup")
MAX_BATCHES_PER_RUN = 20
ONE_SHOT = ("orphaned_jobs", "stale_leases", "gone_instances")  # steps that are not batched
GONE_INSTANCE_RETENTION = 86400.0  # a killed instance's row is shown as gone for a day, then removed


@dataclass(frozen=True, slots=True)
class RunCleanup:
    """Run the retention pass now; the reply is {kind: rows removed}."""


@dataclass(frozen=True, slots=True)
class EmergencyCleanup:
    """Cancel every scan (keeping checkpoints), remove orphaned and old data, reset memory to the database."""

    requested_by: str = "api"


class CleanupScheduler(PeriodicActor):
    """Owns retention: old finished jobs, old events, orphaned files and jobs, stale leases; never a live job."""

    def __init__(self, parts: Collaborators) -> None:
        super().__init__(parts, parts.config.safeguards.cleanup_interval, "cleanup")
        self.runs = 0
        self.failures = 0
        self.last: dict[str, Any] = {}

    def on_receive(self, message: Any) -> Any:
        match message:
            case Tick():
                return self._run_logged()
            case RunCleanup():
                return self._retention()
            case EmergencyCleanup(requested_by):
                return self._emergency(requested_by)
        return super().on_receive(message)

    def _run_logged(self) -> dict[str, int] | None:
        try:
            return self._retention()
        except ScanguardError as exc:
            log.error("cleanup.failed", error=str(exc))
            return None

    def _retention(self) -> dict[str, int]:
        """One pass; each step is its own transaction, in batches of cleanup_batch_size."""
        sg = self.config.safeguards
        now = datetime.now(UTC)
        removed: dict[str, int] = {}
        self.runs += 1
        steps: list[tuple[str, Callable[[], Removed]]] = [
            (
                "jobs",
                lambda: self.store.remove_old_jobs(
                    now - timedelta(seconds=sg.old_completed_job_retention), sg.cleanup_batch_size
                ),
            ),
            (
                "events",
                lambda: self.store.remove_old_events(
                    now - timedelta(seconds=sg.event_retention), sg.cleanup_batch_size
                ),
            ),
            ("orphaned_files", lambda: self.store.remove_orphaned_files(sg.cleanup_batch_size)),
            ("orphaned_jobs", self.store.remove_orphaned_jobs),
            ("stale_leases", self.store.release_stale_leases),
            (
                "gone_instances",
                lambda: self.store.remove_gone_instances(now - timedelta(seconds=GONE_INSTANCE_RETENTION)),
            ),
        ]
        try:
            for kind, step in steps:
                total = 0
                for _ in range(MAX_BATCHES_PER_RUN):
                    count = step().count
                    total += count
                    if count < sg.cleanup_batch_size or kind in ONE_SHOT:
                        break
                removed[kind] = total
                if total:
                    self.metrics.cleanup_removed.labels(kind).inc(total)
        except ScanguardError as exc:
            self.failures += 1
            self.metrics.cleanup_runs.labels("failed").inc()
            self.last = {"at": now.isoformat(), "removed": removed, "error": str(exc)}
            raise
        self.metrics.cleanup_runs.labels("ok").inc()
        self.last = {"at": now.isoformat(), "removed": removed}
        if any(removed.values()):
            log.info("cleanup.done", **removed)
        return removed

    def _emergency(self, requested_by: str) -> dict[str, Any]:
        sg = self.config.safeguards
        if not sg.emergency_cleanup_enabled:
            raise EmergencyCleanupDisabled()
        self.metrics.emergency_cleanups.inc()
        now = datetime.now(UTC)
        paused: list[int] = []
        orphans: list[int] = []
        supervised: Supervised = self.supervisor.ask(LiveDetail(), block=True, timeout=sg.operation_timeout)
        for job, lease_expires in self.store.read(RunningWithLeases()):
            quiet = quiet_seconds(job.heartbeat_at, now)
            dead = abandoned(
                job.owner,
                self.instance,
                job.id in supervised,
                lease_expires,
                quiet,
                sg.orphaned_job_threshold,
                now,
            )
            try:
                if dead:
                    fix: Fix = self.library(job.library_id).ask(
                        AdoptOrphan(job.id, "emergency"), block=True, timeout=sg.operation_timeout
                    )
                    if fix.action != "left":
                        orphans.append(job.id)
                else:
                    self.library(job.library_id).ask(
                        PauseScan(job.id, "emergency"), timeout=sg.operation_timeout
                    )
                    paused.append(job.id)
            except (Conflict, NotFound):
                continue
        removed = self._retention()
        reconciled: list[dict[str, Any]] = []
        for library in self.store.read(ListLibraries()):
            fixes: list[Fix] = self.library(library.id).ask(
                Reconcile("emergency"), block=True, timeout=sg.operation_timeout
            )
            reconciled.extend(
                {"job_id": f.job_id, "direction": f.direction, "action": f.action} for f in fixes
            )
        active = self.store.read(ActiveJobs())
        report: dict[str, Any] = {
            "paused_jobs": paused,
            "orphaned_jobs_paused": orphans,
            "removed": removed,
            "reconciled": reconciled,
            "active_jobs_after": [
                {"id": j.id, "status": j.status, "pause_reason": j.pause_reason} for j in active
            ],
            "running_jobs_after": sum(1 for j in active if j.status == "running"),
        }
        self.store.record_event("emergency.cleanup", None, None, requested_by=requested_by, **report)
        log.warning(
            "emergency.cleanup", requested_by=requested_by, paused=paused, orphans=orphans, removed=removed
        )
        return report

    def stats(self) -> dict[str, Any]:
        return {"runs": self.runs, "failures": self.failures, "last": dict(self.last)}
