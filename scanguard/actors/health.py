"""The HealthChecker: a health snapshot every interval, and alert events when a threshold is crossed."""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pykka
import structlog

from scanguard.actors.liveness import AreYouThere
from scanguard.actors.supervisor import LiveDetail, Supervised
from scanguard.actors.ticking import Collaborators, PeriodicActor, Tick
from scanguard.errors import ScanguardError
from scanguard.metrics import Metrics
from scanguard.ownership import quiet_seconds
from scanguard.store.engine import sqlite_file
from scanguard.store.reads import ActiveJobs, RunningWithLeases

log = structlog.get_logger("scanguard.health")

# the seed's alert conditions, each read from a counter that only grows (fires when it grew) or a level
COUNTER_ALERTS = {
    "lock_timeouts": "scanguard_lock_timeouts_total",
    "operation_timeouts": "scanguard_operation_timeouts_total",
    "state_inconsistencies": "scanguard_state_mismatches_total",
    "emergency_cleanup": "scanguard_emergency_cleanups_total",
    "supervisor_gave_up": "scanguard_jobs_failed_total",
    "store_unavailable": "scanguard_store_unavailable_total",
}


@dataclass(frozen=True, slots=True)
class Check:
    """Take a snapshot now; the reply is the snapshot dict."""


def _total(metrics: Metrics, name: str, **labels: str) -> float:
    """The sum of a metric's samples (over all label values unless some are given)."""
    total = 0.0
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


class HealthChecker(PeriodicActor):
    """Owns the health snapshot the status endpoint serves, and the alerts."""

    def __init__(self, parts: Collaborators, actors: Callable[[], dict[str, pykka.ActorRef[Any]]]) -> None:
        super().__init__(parts, parts.config.safeguards.health_check_interval, "health")
        self.actors = actors
        self.snapshot: dict[str, Any] = {"at": None, "healthy": None, "alerts": []}
        self._seen: dict[str, float] = {}

    def on_start(self) -> None:
        self._seen = self._counters()
        super().on_start()

    def _counters(self) -> dict[str, float]:
        """The alert counters' current values (alerts fire on growth since the last snapshot)."""
        current = {name: _total(self.metrics, metric) for name, metric in COUNTER_ALERTS.items()}
        current["transaction_failures"] = _total(self.metrics, "scanguard_operations_total", outcome="failed")
        current["cleanup_failures"] = _total(self.metrics, "scanguard_cleanup_runs_total", outcome="failed")
        return current

    def on_receive(self, message: Any) -> Any:
        match message:
            case Tick() | Check():
                return self._check()
        return super().on_receive(message)

    def _ping_actors(self) -> dict[str, bool]:
        timeout = self.config.safeguards.actor_ping_timeout
        alive: dict[str, bool] = {}
        for name, ref in self.actors().items():
            try:
                ref.ask(AreYouThere(), timeout=timeout)
                alive[name] = True
            except (pykka.Timeout, pykka.ActorDeadError):
                alive[name] = False
        return alive

    def _database(self) -> dict[str, Any]:
        try:
            latency = self.store.ping()
        except (ScanguardError, pykka.Timeout) as exc:
            return {"reachable": False, "latency_ms": None, "error": str(exc) or type(exc).__name__}
        self.metrics.db_latency.set(latency)
        return {"reachable": True, "latency_ms": round(latency * 1000, 2), "error": None}

    def _process(self) -> dict[str, Any]:
        proc = psutil.Process()
        rss = proc.memory_info().rss
        fds = proc.num_fds() if hasattr(proc, "num_fds") else len(proc.open_files())
        database = sqlite_file(self.config.database.url)
        where = database.parent if database is not None else Path.cwd()
        disk_free = shutil.disk_usage(where if where.exists() else Path(os.sep)).free
        self.metrics.rss.set(rss)
        self.metrics.open_fds.set(fds)
        self.metrics.disk_free.set(disk_free)
        return {"rss_bytes": rss, "open_fds": fds, "disk_free_bytes": disk_free}

    def _scans(self, db_ok: bool) -> dict[str, Any]:
        sg = self.config.safeguards
        supervised: Supervised = self.supervisor.ask(LiveDetail(), block=True, timeout=sg.actor_ping_timeout)
        self.metrics.active_scans.set(len(supervised.live))
        out: dict[str, Any] = {
            "live": len(supervised.live),
            "restarting": len(supervised.pending),
            "store_waiting": sorted(supervised.store_waits),
        }
        if not db_ok:
            return out
        now = datetime.now(UTC)
        running = [job for job, _ in self.store.read(RunningWithLeases())]
        active = self.store.read(ActiveJobs())
        stuck = [j.id for j in running if quiet_seconds(j.heartbeat_at, now) > sg.stall_threshold]
        owned = [j.id for j in running if j.owner == self.instance]
        self.metrics.db_running_jobs.set(len(running))
        self.metrics.db_active_jobs.set(len(active))
        out.update(
            db_running=len(running), db_running_owned=len(owned), db_active=len(active), stuck_jobs=stuck
        )
        out["mismatched"] = supervised.against(running, self.instance).job_ids
        return out

    def _operations(self) -> dict[str, Any]:
        return {
            "succeeded": _total(self.metrics, "scanguard_operations_total", outcome="ok"),
            "rejected": _total(self.metrics, "scanguard_operations_total", outcome="rejected"),
            "failed": _total(self.metrics, "scanguard_operations_total", outcome="failed"),
            "timeouts": _total(self.metrics, "scanguard_operation_timeouts_total"),
            "lock_timeouts": _total(self.metrics, "scanguard_lock_timeouts_total"),
            "seconds_total": round(_total(self.metrics, "scanguard_operation_duration_seconds_sum"), 4),
            "count": _total(self.metrics, "scanguard_operation_duration_seconds_count"),
            "orphans_found": _total(self.metrics, "scanguard_orphans_found_total"),
            "orphans_fixed": _total(self.metrics, "scanguard_orphans_fixed_total"),
            "stalled_paused": _total(self.metrics, "scanguard_stalled_jobs_total"),
            "restarts": _total(self.metrics, "scanguard_supervisor_restarts_total"),
            "cleanup_removed": _total(self.metrics, "scanguard_cleanup_removed_total"),
            "cleanup_failures": _total(self.metrics, "scanguard_cleanup_runs_total", outcome="failed"),
        }

    def _alerts(self, db: dict[str, Any], scans: dict[str, Any]) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = []
        if not db["reachable"]:
            alerts.append({"alert": "database_unreachable", "error": db["error"]})
        if scans.get("store_waiting"):
            alerts.append({"alert": "store_unavailable", "job_ids": scans["store_waiting"]})
        if scans.get("stuck_jobs"):
            alerts.append({"alert": "stalled_jobs", "job_ids": scans["stuck_jobs"]})
        if scans.get("mismatched"):
            alerts.append({"alert": "state_inconsistencies", "job_ids": scans["mismatched"]})
        current = self._counters()
        for name, value in current.items():
            grew = value - self._seen.get(name, 0.0)
            if grew > 0 and not any(a["alert"] == name for a in alerts):
                alerts.append({"alert": name, "new": grew})
        self._seen = current
        return alerts

    def _check(self) -> dict[str, Any]:
        db = self._database()
        actors = self._ping_actors()
        try:
            scans = self._scans(db["reachable"])
        except (ScanguardError, pykka.Timeout) as exc:
            scans = {"error": str(exc)}
        alerts = self._alerts(db, scans)
        for alert in alerts:
            name = alert["alert"]
            self.metrics.alerts.labels(name).inc()
            log.warning(f"alert.{name}", **{k: v for k, v in alert.items() if k != "alert"})
            if db["reachable"]:
                try:
                    self.store.record_event(
                        f"alert.{name}", None, None, **{k: v for k, v in alert.items() if k != "alert"}
                    )
                except ScanguardError as exc:
                    log.warning("health.alert_record_failed", alert=name, error=str(exc))
        healthy = (
            db["reachable"] and all(actors.values()) and not scans.get("stuck_jobs") and "error" not in scans
        )
        self.metrics.healthy.set(1 if healthy else 0)
        self.snapshot = {
            "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "healthy": healthy,
            "database": db,
            "actors": actors,
            "scans": scans,
            "operations": self._operations(),
            "process": self._process(),
            "alerts": alerts,
        }
        return self.snapshot

    def stats(self) -> dict[str, Any]:
        """A copy of the last snapshot: callers never hold this actor's state."""
        return copy.deepcopy(self.snapshot)
