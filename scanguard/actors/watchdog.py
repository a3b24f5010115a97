"""The Watchdog: finds running jobs whose heartbeat went quiet — stalled (ours) or orphaned (nobody's)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pykka
import structlog

from scanguard.actors.library import AdoptOrphan, Fix
from scanguard.actors.supervisor import STORE_UNAVAILABLE, LiveDetail, Supervised
from scanguard.actors.ticking import Collaborators, PeriodicActor, Tick
from scanguard.backoff import backoff_delay
from scanguard.control import PauseScan, ResumeScan
from scanguard.errors import Conflict, NotFound, ScanguardError
from scanguard.ownership import abandoned, quiet_seconds
from scanguard.records import Job
from scanguard.store.reads import ALL, ActiveJobs, ListJobs, RunningWithLeases

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
    handed_over: tuple[int, ...] = ()


STORE_RETRY_TICKS = 16
"""At most this many watchdog intervals between two resumes of a job its store keeps failing."""


@dataclass(frozen=True, slots=True)
class _StoreRetry:
    """The last resume of a job paused store_unavailable: how many in a row, from where, next when."""

    attempts: int
    checkpoint: str | None
    not_before: float


class Watchdog(PeriodicActor):
    """Owns stall and orphan detection, the hand-over of scans a clean shutdown paused, and (with
    auto_resume_orphans) the resume, with backoff, of scans paused because their store failed."""

    def __init__(self, parts: Collaborators) -> None:
        super().__init__(parts, parts.config.safeguards.watchdog_interval, "watchdog")
        self._store_retries: dict[int, _StoreRetry] = {}

    def on_receive(self, message: Any) -> Any:
        match message:
            case Tick():
                # a tick has no caller to tell: a failed sweep (the store unreachable, say) is logged and the
                # next tick tries again
                try:
                    return self._sweep("tick")
                except (ScanguardError, pykka.Timeout) as exc:
                    log.warning("watchdog.sweep_failed", error=str(exc))
                    return None
            case Sweep(reason):
                return self._sweep(reason)
        return super().on_receive(message)

    def _sweep(self, reason: str) -> SweepReport:
        sg = self.config.safeguards
        self._beat()
        now = datetime.now(UTC)
        supervised: Supervised = self.supervisor.ask(LiveDetail(), block=True, timeout=sg.operation_timeout)
        stalled: list[int] = []
        orphaned: list[int] = []
        resumed: list[int] = []
        for job, lease_expires in self.store.read(RunningWithLeases()):
            quiet = quiet_seconds(job.heartbeat_at, now)
            if job.owner == self.instance and job.id in supervised.live:
                if quiet > sg.stall_threshold and self._stalled(job.id, job.library_id, quiet):
                    stalled.append(job.id)
                continue
            here = job.id in supervised  # a live scan, or a supervised restart pending
            if not abandoned(
                job.owner, self.instance, here, lease_expires, quiet, sg.orphaned_job_threshold, now
            ):
                continue
            fix = self._orphan(job.id, job.library_id, quiet, reason)
            if fix is not None and fix.action != "left":
                orphaned.append(job.id)
                if fix.action == "resumed":
                    resumed.append(job.id)
        if sg.auto_resume_orphans:
            resumed.extend(self._resume_store_paused())
        handed_over = self._take_over_shutdown_pauses(reason) if sg.auto_resume_orphans else []
        if stalled or orphaned or resumed or handed_over:
            log.info(
                "watchdog.swept",
                reason=reason,
                stalled=stalled,
                orphaned=orphaned,
                resumed=resumed,
                handed_over=handed_over,
            )
        return SweepReport(tuple(stalled), tuple(orphaned), tuple(resumed), tuple(handed_over))

    def _beat(self) -> None:
        """Renew this instance's row in `instances`: others see it live while it beats."""
        try:
            self.store.beat_instance()
        except (ScanguardError, pykka.Timeout) as exc:
            log.warning("watchdog.heartbeat_failed", instance=self.instance, error=str(exc))

    def _take_over_shutdown_pauses(self, reason: str) -> list[int]:
        """Hand-over: scans a clean shutdown paused (its leases are released) are resumed here.

        A stopping runtime stops its watchdog before pausing its scans, so it never takes its own back;
        when several instances try, the library's transaction lets one resume and refuses the others.
        """
        taken: list[int] = []
        for job in self.store.read(ListJobs(("paused",), limit=ALL)).items:
            if job.pause_reason != "shutdown":
                continue
            try:
                self.library(job.library_id).ask(
                    ResumeScan(job.id), block=True, timeout=self.config.safeguards.operation_timeout
                )
            except (Conflict, NotFound) as exc:
                # resumed or removed by another instance first, or its folder is not reachable from here
                log.debug("watchdog.handover_skipped", job_id=job.id, reason=exc.code)
                continue
            except (ScanguardError, pykka.Timeout) as exc:
                log.error("watchdog.handover_failed", job_id=job.id, error=str(exc))
                continue
            taken.append(job.id)
            try:  # recorded once it happened: a resume refused here is tried again next tick, silently
                self.store.record_event(
                    "watchdog.handover", job.library_id, job.id, previous_owner=job.owner, sweep=reason
                )
            except ScanguardError as exc:
                log.warning("watchdog.record_failed", job_id=job.id, error=str(exc))
        return taken

    def _stalled(self, job_id: int, library_id: int, quiet: float) -> bool:
        try:
            self.store.record_event(
                "watchdog.stalled",
                library_id,
                job_id,
                heartbeat_age=round(quiet, 3),
                threshold=self.config.safeguards.stall_threshold,
                action="pause",
            )
            self.library(library_id).ask(
                PauseScan(job_id, "stalled"), timeout=self.config.safeguards.operation_timeout
            )
        except (Conflict, NotFound):
            return False  # it moved on by itself meanwhile
        except (ScanguardError, pykka.Timeout) as exc:
            log.error("watchdog.pause_failed", job_id=job_id, error=str(exc))
            return False
        self.metrics.stalled.inc()
        return True

    def _orphan(self, job_id: int, library_id: int, quiet: float, reason: str) -> Fix | None:
        self.metrics.orphans_found.inc()
        try:
            self.store.record_event(
                "watchdog.orphan_found", library_id, job_id, heartbeat_age=round(quiet, 3), sweep=reason
            )
            fix: Fix = self.library(library_id).ask(
                AdoptOrphan(job_id, "watchdog"), block=True, timeout=self.config.safeguards.operation_timeout
            )
        except (Conflict, NotFound):
            return None
        except (ScanguardError, pykka.Timeout) as exc:
            log.error("watchdog.orphan_failed", job_id=job_id, error=str(exc))
            return None
        if fix.action != "left":
            self.metrics.orphans_fixed.inc()
        return fix

    def _resume_store_paused(self) -> list[int]:
        """Resume jobs paused `store_unavailable`: the store answers again if their scan gets on.

        A full disk looks writable to a small transaction, so the only true probe is the scan itself;
        while it keeps failing, resumes back off (1, 2, 4 … up to STORE_RETRY_TICKS intervals), and the
        backoff starts over once the job's checkpoint has moved (its batches commit again).
        """
        try:
            active: tuple[Job, ...] = self.store.read(ActiveJobs())
        except ScanguardError as exc:
            log.warning("watchdog.store_resume_failed", error=str(exc))
            return []
        self._store_retries = {j.id: r for j in active if (r := self._store_retries.get(j.id)) is not None}
        interval = self.config.safeguards.watchdog_interval
        now = time.monotonic()
        resumed: list[int] = []
        for job in active:
            if job.status != "paused" or job.pause_reason != STORE_UNAVAILABLE:
                continue
            last = self._store_retries.get(job.id)
            if last is not None and last.checkpoint != job.checkpoint:
                last = None  # it made progress since: a new outage
            if last is not None and now < last.not_before:
                continue
            attempts = 0 if last is None else last.attempts
            delay = backoff_delay(interval, attempts, interval * STORE_RETRY_TICKS)
            self._store_retries[job.id] = _StoreRetry(attempts + 1, job.checkpoint, now + delay)
            try:
                self.library(job.library_id).ask(
                    ResumeScan(job.id), timeout=self.config.safeguards.operation_timeout
                )
            except (Conflict, NotFound):
                continue  # resumed, deleted or its root is gone: not the store's business
            except (ScanguardError, pykka.Timeout) as exc:
                log.warning("watchdog.store_resume_failed", job_id=job.id, error=str(exc))
                continue
            log.info("watchdog.store_resumed", job_id=job.id, attempt=attempts + 1, checkpoint=job.checkpoint)
            resumed.append(job.id)
        return resumed
