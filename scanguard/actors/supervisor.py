"""The Supervisor: the stable address of the live scan actors; restarts crashed scans, OTP-style."""

from __future__ import annotations

import collections
import contextlib
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pykka
import structlog

from scanguard.actors.liveness import Answering
from scanguard.actors.scan_job import ScanActor, ScanCrashed, ScanEnded, ScanSpec
from scanguard.backoff import backoff_delay
from scanguard.config import Config
from scanguard.errors import Fenced, IllegalTransition, NotFound, ScanguardError, StoreUnavailable
from scanguard.metrics import Metrics
from scanguard.processing.file_work import FileWork
from scanguard.records import Job, Library
from scanguard.store.reads import GetLibrary
from scanguard.store.seam import Store
from scanguard.walk import FileSystem

log = structlog.get_logger("scanguard.supervisor")

STORE_UNAVAILABLE = StoreUnavailable.code
"""The pause reason of a job whose store failed under it (the StoreUnavailable error's code)."""
STORE_RETRY_CAP = 30.0
"""The longest wait, in seconds, between two attempts to record such a pause (or 64 retry intervals)."""


@dataclass(frozen=True, slots=True)
class Launch:
    """Start a scan actor for a job that the database says is running under `job.fencing_token`."""

    job: Job
    library: Library


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop a job's scan actor if one is live; the reply says whether one was."""

    job_id: int


@dataclass(frozen=True, slots=True)
class LiveDetail:
    """Reply: a Supervised snapshot."""


@dataclass(frozen=True, slots=True)
class Supervised:
    """The live scans {job_id: (token, library_id)}, the jobs waiting for a restart, and among those the
    jobs whose store failed under them and could not yet record their pause {job_id: the store's error}."""

    live: dict[int, tuple[int, int]]
    pending: frozenset[int]
    store_waits: dict[int, str] = field(default_factory=dict)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self.live or job_id in self.pending

    def against(self, running: Iterable[Job], instance: str) -> Mismatch:
        """The one memory-vs-database comparison (the validator, the post-operation check, health):
        `running` is what the database says runs."""
        by_id = {job.id: job for job in running}
        strays = {
            job_id: library_id
            for job_id, (token, library_id) in self.live.items()
            if (job := by_id.get(job_id)) is None or job.fencing_token != token
        }
        orphans = tuple(job for job in by_id.values() if job.owner == instance and job.id not in self)
        return Mismatch(strays, orphans)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Where memory and database disagree, both directions: live scans the database does not run under
    their token {job_id: library_id}, and jobs the database runs here with no live scan or pending restart.
    """

    strays: dict[int, int]
    orphans: tuple[Job, ...]

    @property
    def libraries(self) -> set[int]:
        return {*self.strays.values(), *(job.library_id for job in self.orphans)}

    @property
    def job_ids(self) -> list[int]:
        return sorted({*self.strays, *(job.id for job in self.orphans)})


@dataclass(frozen=True, slots=True)
class _CheckStopped:
    job_id: int
    ref: pykka.ActorRef[Any]


@dataclass(frozen=True, slots=True)
class _Relaunch:
    job_id: int
    error: str
    delay: float


@dataclass(frozen=True, slots=True)
class _RetryStorePause:
    job_id: int
    error: str
    attempt: int


@dataclass(slots=True)
class _Child:
    ref: pykka.ActorRef[Any]
    cancel: threading.Event
    token: int
    library_id: int


class Supervisor(Answering):
    """Owns the live ScanActors: spawns them, stops them, restarts crashed ones within an intensity limit."""

    def __init__(
        self,
        config: Config,
        store: Store,
        metrics: Metrics,
        *,
        work: FileWork | None = None,
        fs: FileSystem | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.store = store
        self.metrics = metrics
        self.work = work or FileWork(metrics=metrics)
        self.fs = fs
        self._children: dict[int, _Child] = {}
        self._crashes: dict[int, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._timers: dict[int, threading.Timer] = {}
        self._store_waits: dict[int, str] = {}
        self._all_timers: weakref.WeakSet[threading.Timer] = weakref.WeakSet()

    def on_stop(self) -> None:
        for timer in list(self._all_timers):
            timer.cancel()
        # cancel every walk first, then give them force_kill_timeout together to end
        for child in self._children.values():
            child.cancel.set()
            child.ref.stop(block=False)
        deadline = time.monotonic() + self.config.safeguards.force_kill_timeout
        for job_id, child in self._children.items():
            if not child.ref.actor_stopped.wait(max(0.0, deadline - time.monotonic())):
                log.error(
                    "supervisor.abandoned", job_id=job_id, after=self.config.safeguards.force_kill_timeout
                )
        self._children.clear()

    def on_receive(self, message: Any) -> Any:
        match message:
            case Launch(job, library):
                self._spawn(job, library)
            case Stop(job_id):
                return self._stop_child(job_id)
            case LiveDetail():
                return Supervised(
                    {job_id: (c.token, c.library_id) for job_id, c in self._children.items()},
                    frozenset(self._timers),
                    {job_id: error for job_id, error in self._store_waits.items() if job_id in self._timers},
                )
            case _CheckStopped(job_id, ref):
                self._check_stopped(job_id, ref)
            case ScanEnded(job_id, token, outcome, _):
                self._forget(job_id, token)
                if outcome == "completed":
                    self._crashes.pop(job_id, None)
            case ScanCrashed() as crash:
                self._on_crash(crash)
            case _RetryStorePause(job_id, error, attempt):
                self._timers.pop(job_id, None)
                self._pause_for_store(job_id, error, attempt)
            case _Relaunch(job_id, error, delay):
                self._timers.pop(job_id, None)
                self._relaunch(job_id, error, delay)
            case _:
                return super().on_receive(message)
        return None

    def _spawn(self, job: Job, library: Library) -> None:
        old = self._children.pop(job.id, None)
        if old is not None:
            self._halt(job.id, old)
        cancel = threading.Event()
        ref = ScanActor.start(
            ScanSpec(job, library, job.fencing_token),
            config=self.config,
            store=self.store,
            supervisor=self.actor_ref,
            cancel=cancel,
            work=self.work,
            fs=self.fs,
        )
        self._children[job.id] = _Child(ref, cancel, job.fencing_token, library.id)
        log.info(
            "supervisor.spawned",
            job_id=job.id,
            library_id=library.id,
            token=job.fencing_token,
            checkpoint=job.checkpoint,
        )

    def _stop_child(self, job_id: int) -> bool:
        self._store_waits.pop(job_id, None)
        timer = self._timers.pop(job_id, None)
        if timer is not None:
            timer.cancel()
        child = self._children.pop(job_id, None)
        if child is None:
            return False
        self._halt(job_id, child)
        return True

    def _halt(self, job_id: int, child: _Child) -> None:
        """The one way to stop a scan: cancel its walk, stop its actor, and watch that it really ends.

        A thread stuck in a filesystem call cannot be killed; after force_kill_timeout it is abandoned —
        harmless, because its fencing token is stale and any batch it sends commits nothing.
        """
        child.cancel.set()
        child.ref.stop(block=False)
        self._tell_later(self.config.safeguards.force_kill_timeout, _CheckStopped(job_id, child.ref))

    def _check_stopped(self, job_id: int, ref: pykka.ActorRef[Any]) -> None:
        if not ref.is_alive():
            return
        log.error("supervisor.abandoned", job_id=job_id, after=self.config.safeguards.force_kill_timeout)
        try:
            self.store.record_event(
                "supervisor.abandoned",
                job_id=job_id,
                after_seconds=self.config.safeguards.force_kill_timeout,
                reason="scan thread did not stop (stuck in a system call); its writes are fenced",
            )
        except ScanguardError as exc:
            log.warning("supervisor.record_failed", job_id=job_id, error=str(exc))

    def _forget(self, job_id: int, token: int) -> bool:
        child = self._children.get(job_id)
        if child is None or child.token != token:
            return False
        del self._children[job_id]
        return True

    def _on_crash(self, crash: ScanCrashed) -> None:
        """A live scan died: its store failing under it pauses the job; anything else is a crash."""
        if not self._forget(crash.job_id, crash.token):
            return
        if crash.code == StoreUnavailable.code:
            self._store_lost(crash.job_id, crash.error)
        else:
            self._crashed(crash.job_id, crash.error)

    def _crashed(self, job_id: int, error: str) -> None:
        sg = self.config.safeguards
        now = time.monotonic()
        crashes = self._crashes[job_id]
        crashes.append(now)
        while crashes and now - crashes[0] > sg.retry_window:
            crashes.popleft()
        attempt = len(crashes)
        if attempt > sg.max_retries:
            self._give_up(job_id, error, attempt - 1)
            return
        delay = backoff_delay(sg.retry_interval, attempt - 1)
        log.warning("supervisor.crash", job_id=job_id, error=error, attempt=attempt, delay=round(delay, 3))
        self._timers[job_id] = self._tell_later(delay, _Relaunch(job_id, error, delay))

    def _store_lost(self, job_id: int, error: str) -> None:
        """The store failed under a scan (full disk, lost connection): not a crash of the scan, so no
        restart is spent on it; the job is paused `store_unavailable` with its checkpoint, and resumed
        when the store answers again (the watchdog, with auto_resume_orphans; else scan or resume)."""
        self._crashes.pop(job_id, None)
        self.metrics.store_unavailable.inc()
        log.warning("supervisor.store_unavailable", job_id=job_id, error=error)
        self._pause_for_store(job_id, error, 0)

    def _pause_for_store(self, job_id: int, error: str, attempt: int) -> None:
        """Write the pause; while the store cannot take even that, keep the job here (pending, so the
        watchdog and validator leave it alone) and try again with backoff."""
        self._store_waits.pop(job_id, None)
        try:
            self.store.pause_job(job_id, STORE_UNAVAILABLE, error=error)
        except (IllegalTransition, NotFound, Fenced) as exc:
            # paused, deleted, finished or taken over by another instance meanwhile: nothing left to pause
            log.info("supervisor.store_pause_dropped", job_id=job_id, reason=exc.code)
            return
        except ScanguardError as exc:
            sg = self.config.safeguards
            cap = max(sg.retry_interval, min(STORE_RETRY_CAP, sg.retry_interval * 64))
            delay = backoff_delay(sg.retry_interval, attempt, cap)
            log.warning(
                "supervisor.store_pause_deferred",
                job_id=job_id,
                error=str(exc),
                attempt=attempt + 1,
                delay=round(delay, 3),
            )
            self._timers[job_id] = self._tell_later(delay, _RetryStorePause(job_id, error, attempt + 1))
            self._store_waits[job_id] = error
            return
        log.warning("supervisor.paused_store_unavailable", job_id=job_id, error=error)

    def _tell_later(self, delay: float, message: Any) -> threading.Timer:
        """Tell this supervisor `message` after `delay`; every such timer is cancelled when it stops."""
        ref = self.actor_ref

        def fire() -> None:
            with contextlib.suppress(pykka.ActorDeadError):  # stopped meanwhile: nothing left to do
                ref.tell(message)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        self._all_timers.add(timer)
        timer.start()
        return timer

    def _give_up(self, job_id: int, error: str, restarts: int) -> None:
        self._crashes.pop(job_id, None)
        try:
            self.store.fail_job(job_id, error, restarts)
        except (IllegalTransition, Fenced, NotFound):
            return
        self.metrics.failures.inc()
        log.error("supervisor.gave_up", job_id=job_id, error=error, restarts=restarts)

    def _relaunch(self, job_id: int, error: str, delay: float) -> None:
        try:
            job = self.store.record_restart(job_id, error, delay)
            library = self.store.read(GetLibrary(job.library_id))
        except (IllegalTransition, Fenced, NotFound) as exc:
            # paused, deleted, finished or taken over by another instance meanwhile: nothing to restart
            log.info("supervisor.relaunch_dropped", job_id=job_id, reason=exc.code)
            self._crashes.pop(job_id, None)
            return
        except ScanguardError as exc:
            log.error("supervisor.relaunch_failed", job_id=job_id, error=str(exc))
            self._crashed(job_id, str(exc))
            return
        self.metrics.restarts.inc()
        self._spawn(job, library)
