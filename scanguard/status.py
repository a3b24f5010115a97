"""The safeguards' status report (GET /api/admin/safeguards/status): what the Runtime gathered, laid out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scanguard.config import Config
from scanguard.metrics import Metrics
from scanguard.processing.context import QUARANTINE_REASONS
from scanguard.records import WATCH_STATES


@dataclass(frozen=True, slots=True)
class StatusParts:
    """One moment's readings: the health snapshot, the database's job counts, this process's scans (live,
    waiting for a restart, and among those waiting for the store), the safeguards' counters."""

    config: Config
    instance: str
    metrics: Metrics
    health: dict[str, Any]
    counts: dict[str, int]
    live_scans: int
    restarting: int
    store_waiting: tuple[int, ...]
    workers_alive: bool
    validator: dict[str, Any]
    cleanup: dict[str, Any]
    events_listener: dict[str, Any] | None


def status_report(parts: StatusParts) -> dict[str, Any]:
    """The report, from one moment's readings."""
    counts = dict(parts.counts)
    libraries = counts.pop("libraries")
    metric = _Samples(parts.metrics)
    health = parts.health
    return {
        "instance": parts.instance,
        "healthy": health.get("healthy"),
        "health": health,
        "health_age_seconds": _age_seconds(health.get("at")),
        "jobs": counts,
        # read now, like `jobs`: what runs here, beside what the database says runs (one moment)
        "scans": {
            "live": parts.live_scans,
            "restarting": parts.restarting,
            "store_waiting": sorted(parts.store_waiting),
            "db_running": counts.get("running", 0),
        },
        "libraries": libraries,
        "watchdog": {
            "orphans_found": metric("scanguard_orphans_found_total"),
            "orphans_fixed": metric("scanguard_orphans_fixed_total"),
            "stalled_paused": metric("scanguard_stalled_jobs_total"),
            "interval_seconds": parts.config.safeguards.watchdog_interval,
        },
        "supervisor": {
            "restarts": metric("scanguard_supervisor_restarts_total"),
            "jobs_failed": metric("scanguard_jobs_failed_total"),
            "live_scans": parts.live_scans,
        },
        "workers": _workers(parts, metric),
        "watching": _watching(parts.metrics),
        "validator": parts.validator,
        "cleanup": parts.cleanup,
        "config": parts.config.as_dict(),
        "events_listener": parts.events_listener,
    }


class _Samples:
    """Reads a counter's current value from the metrics registry (0 when it was never touched)."""

    def __init__(self, metrics: Metrics) -> None:
        self._registry = metrics.registry

    def __call__(self, name: str, **labels: str) -> float:
        return self._registry.get_sample_value(name, labels or None) or 0.0


def _workers(parts: StatusParts, metric: _Samples) -> dict[str, Any]:
    scan = parts.config.scan
    return {
        "processors": list(scan.processors),
        "workers": scan.worker_count if scan.processors else 0,
        "alive": parts.workers_alive,
        "file_timeout_seconds": scan.file_timeout,
        "files_quarantined": {
            reason: metric("scanguard_files_quarantined_total", reason=reason)
            for reason in QUARANTINE_REASONS
        },
        "processor_threads_abandoned": metric("scanguard_processor_threads_abandoned_total"),
    }


def _watching(metrics: Metrics) -> dict[str, Any]:
    """This process's watchers: how many libraries are in each state, and the fallbacks by reason."""
    states: dict[str, int] = dict.fromkeys(WATCH_STATES, 0)
    fallbacks: dict[str, float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "scanguard_watch_state" and sample.value == 1:
                states[sample.labels["state"]] += 1
            elif sample.name == "scanguard_watch_fallbacks_total":
                fallbacks[sample.labels["reason"]] = sample.value
    return {"libraries": states, "fallbacks": fallbacks}


def _age_seconds(at: object) -> float | None:
    """Seconds since an ISO 8601 UTC stamp (the health snapshot's `at`); None when there is none."""
    if not isinstance(at, str):
        return None
    taken = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return round(max(0.0, (datetime.now(UTC) - taken).total_seconds()), 1)
