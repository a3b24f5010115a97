"""The Watchdog: finds running jobs whose heartbeat went quiet — stalled (ours) or orphaned (nobody's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pykka
import structlog

from scanguard.actors.library import PauseScan, ResumeScan
from scanguard.actors.supervisor import LiveScans
from scanguard.actors.ticking import Tick, Ticker
from scanguard.config import Config
from scanguard.errors import Conflict, NotFound, ScanguardError
from scanguard.ownership import owner_is_dead

log = structlog.get_logger("scanguard.watchdog")


@dataclass(frozen=True, slots=True)
class Sweep:
    """Check every running job now; the reply is a SweepReport."""

    reason: str = "tick"


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep found and did."""

    stalled: tuple[int, ...] = ()
    orphaned: tuple[int, ...] = ()
    resumed: tuple[int, ...] = ()


@dataclass(slots=True)
class WatchdogStats:
    """Counters the health snapshot and metrics read."""

    sweeps: int = 0
    stalled: int = 0
    orphans_found: int = 0
    orphans_fixed: int = 0
    errors: list[str] = field(default_factory=list)


class Watchdog(pykka.ThreadingActor):
    """Owns stall and orphan detection: pauses stalled scans, pauses (or resumes) orphaned ones."""

    def __init__(
        self,
        config: Config,
        instance: str,
        store: Any,
        supervisor: pykka.ActorRef[Any],
        library: Callable[[int], pykka.ActorRef[Any]],
    ) -> None:
        super().__init__()
        self.config = config
        self.instance = instance
        self.store = store
        self.supervisor = supervisor
        self.library = library
        self.stats = WatchdogStats()
        self._ticker = Ticker(self.actor_ref, config.safeguards.watchdog_interval, "watchdog")

    def on_start(self) -> None:
        self._ticker.start()

    def on_stop(self) -> None:
        self._ticker.stop()

    def on_receive(self, message: Any) -> Any:
        match message:
            case Tick():
                return self._sweep("tick")
            case Sweep(reason):
                return self._sweep(reason)
        return super().on_receive(message)

    def _sweep(self, reason: str) -> SweepReport:
        sg = self.config.safeguards
        now = datetime.now(UTC)
        live: dict[int, int] = self.supervisor.ask(LiveScans(), timeout=sg.operation_timeout)
        stalled: list[int] = []
        orphaned: list[int] = []
        resumed: list[int] = []
        self.stats.sweeps += 1
        for job, lease_expires in self.store.running_with_leases().get():
            quiet = (now - job.heartbeat_at).total_seconds() if job.heartbeat_at else float("inf")
            lease_expired = lease_expires is None or lease_expires <= now
            if job.owner == self.instance:
                if job.id in live:
                    if quiet > sg.stall_threshold:
                        self._pause(job.id, job.library_id, "stalled", quiet) and stalled.append(job.id)
                    continue
                if quiet <= sg.orphaned_job_threshold:
                    continue  # starting, or waiting for a supervised restart
            elif not owner_is_dead(job.owner, lease_expired=lease_expired) and not (
                lease_expired and quiet > sg.orphaned_job_threshold
            ):
                continue
            if self._pause(job.id, job.library_id, "orphaned", quiet):
                orphaned.append(job.id)
                if sg.auto_resume_orphans and self._resume(job.id, job.library_id):
                    resumed.append(job.id)
        if stalled or orphaned:
            log.info("watchdog.swept", reason=reason, stalled=stalled, orphaned=orphaned, resumed=resumed)
        return SweepReport(tuple(stalled), tuple(orphaned), tuple(resumed))

    def _pause(self, job_id: int, library_id: int, reason: str, quiet: float) -> bool:
        event = "watchdog.stalled" if reason == "stalled" else "watchdog.orphan_found"
        try:
            self.store.record_event(event, library_id, job_id, heartbeat_age=round(quiet, 3), action="pause").get()
            self.library(library_id).ask(PauseScan(job_id, reason), timeout=self.config.safeguards.operation_timeout)
        except (Conflict, NotFound):
            return False  # it moved on by itself meanwhile
        except (ScanguardError, pykka.Timeout) as exc:
            self.stats.errors.append(f"{job_id}: {exc}")
            log.error("watchdog.pause_failed", job_id=job_id, reason=reason, error=str(exc))
            return False
        if reason == "stalled":
            self.stats.stalled += 1
        else:
            self.stats.orphans_found += 1
            self.stats.orphans_fixed += 1
        return True

    def _resume(self, job_id: int, library_id: int) -> bool:
        try:
            self.library(library_id).ask(ResumeScan(job_id), timeout=self.config.safeguards.operation_timeout)
        except (ScanguardError, pykka.Timeout) as exc:
            log.warning("watchdog.auto_resume_failed", job_id=job_id, error=str(exc))
            return False
        self.store.record_event("watchdog.orphan_resumed", library_id, job_id).get()
        return True

    def get_stats(self) -> WatchdogStats:
        return WatchdogStats(
            self.stats.sweeps, self.stats.stalled, self.stats.orphans_found, self.stats.orphans_fixed,
            list(self.stats.errors[-20:]),
        )
