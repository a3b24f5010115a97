"""The Prometheus metrics of one Runtime: the seed's health metrics, in their own registry."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


class _WithoutCreated(Collector):
    """A registry's metrics without the `_created` sample that prometheus_client adds to every counter and
    histogram (a timestamp series per label set, which the text format exposes as a gauge twin)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            created = family.name + "_created"
            family.samples = [s for s in family.samples if s.name != created]
            yield family


def exposition(registries: Iterable[CollectorRegistry]) -> bytes:
    """The Prometheus text format of these registries, in order, without `_created` series."""
    return b"".join(generate_latest(_WithoutCreated(r)) for r in registries)


class Metrics:
    """Owns the registry and every metric the actors and the Runtime update (thread-safe)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.operations = Counter(
            "scanguard_operations", "Safeguarded operations by outcome", ["operation", "outcome"], registry=r
        )
        self.operation_seconds = Histogram(
            "scanguard_operation_duration_seconds",
            "Duration of safeguarded operations",
            ["operation"],
            registry=r,
        )
        self.operation_timeouts = Counter(
            "scanguard_operation_timeouts",
            "Operations that exceeded operation_timeout",
            ["operation"],
            registry=r,
        )
        self.lock_timeouts = Counter(
            "scanguard_lock_timeouts",
            "Timeouts waiting for a library's mailbox (the library lock)",
            registry=r,
        )
        self.active_scans = Gauge("scanguard_active_scans", "Live scan actors in this process", registry=r)
        self.db_running_jobs = Gauge(
            "scanguard_db_running_jobs", "Jobs the database says are running", registry=r
        )
        self.db_active_jobs = Gauge(
            "scanguard_db_active_jobs", "Jobs the database says are pending, running or paused", registry=r
        )
        self.orphans_found = Counter("scanguard_orphans_found", "Orphaned jobs detected", registry=r)
        self.orphans_fixed = Counter("scanguard_orphans_fixed", "Orphaned jobs paused or resumed", registry=r)
        self.stalled = Counter(
            "scanguard_stalled_jobs", "Scans paused by the watchdog as stalled", registry=r
        )
        self.mismatches = Counter(
            "scanguard_state_mismatches",
            "Memory/database mismatches fixed by the validator",
            ["direction"],
            registry=r,
        )
        self.restarts = Counter("scanguard_supervisor_restarts", "Crashed scans restarted", registry=r)
        self.failures = Counter(
            "scanguard_jobs_failed", "Jobs failed after exhausting their restarts", registry=r
        )
        self.store_unavailable = Counter(
            "scanguard_store_unavailable",
            "Scans interrupted because the database could not be written or reached",
            registry=r,
        )
        self.cleanup_removed = Counter(
            "scanguard_cleanup_removed", "Rows removed by cleanup", ["kind"], registry=r
        )
        self.cleanup_runs = Counter(
            "scanguard_cleanup_runs", "Cleanup runs by outcome", ["outcome"], registry=r
        )
        self.emergency_cleanups = Counter(
            "scanguard_emergency_cleanups", "Emergency cleanups run", registry=r
        )
        self.files_quarantined = Counter(
            "scanguard_files_quarantined",
            "Files whose per-file work failed, by reason (timeout, signal, exit, error)",
            ["reason"],
            registry=r,
        )
        self.processor_threads_abandoned = Counter(
            "scanguard_processor_threads_abandoned",
            "In-process processor threads abandoned past file_timeout (they cannot be killed)",
            registry=r,
        )
        self.alerts = Counter(
            "scanguard_alerts", "Alerts raised by the health checker", ["alert"], registry=r
        )
        self.webhook_deliveries = Counter(
            "scanguard_webhook_deliveries",
            "Webhook deliveries by outcome: delivered (2xx), failed (an attempt, retried), dead (given up)",
            ["webhook", "outcome"],
            registry=r,
        )
        self.watch_state = Gauge(
            "scanguard_watch_state",
            "1 for each watched library's current watch state (watching, polling, unavailable, off, starting)",
            ["library_id", "state"],
            registry=r,
        )
        self.watch_events = Counter(
            "scanguard_watch_events",
            "Filesystem events read by a library's watcher",
            ["library_id"],
            registry=r,
        )
        self.watch_fallbacks = Counter(
            "scanguard_watch_fallbacks",
            "Times watching degraded, by reason (watch_limit, network_filesystem, overflow, root_unavailable, "
            "crashed)",
            ["reason"],
            registry=r,
        )
        self.watch_pending = Gauge(
            "scanguard_watch_pending",
            "Changed paths waiting for a library's next job",
            ["library_id"],
            registry=r,
        )
        self.healthy = Gauge("scanguard_healthy", "1 when the last health snapshot was healthy", registry=r)
        self.db_latency = Gauge("scanguard_db_latency_seconds", "Last database ping round trip", registry=r)
        self.rss = Gauge("scanguard_process_rss_bytes", "Resident memory of this process", registry=r)
        self.open_fds = Gauge(
            "scanguard_process_open_fds", "Open file descriptors of this process", registry=r
        )
        self.disk_free = Gauge(
            "scanguard_database_disk_free_bytes", "Free disk under the database", registry=r
        )
