"""The ScanActor: walks one library for one job, one batch per message, telling itself to go on."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pykka
import structlog

from scanguard.config import Config
from scanguard.errors import FatalProcessorError, Fenced, IllegalTransition, ScanguardError
from scanguard.records import Job, Library
from scanguard.scanning import (
    FileSystem,
    Found,
    MediaRule,
    RootUnavailable,
    Skipped,
    Walk,
    WalkItem,
    count_media,
    quick_hash,
)
from scanguard.store.batches import BatchCommit, FileRow

log = structlog.get_logger("scanguard.scan")


@dataclass(frozen=True, slots=True)
class FileContext:
    """What a host processor is told about one new or changed media file."""

    library_id: int
    job_id: int
    root: str
    path: str
    abs_path: str
    size: int
    mtime: float
    media_type: str


Processor = Callable[[FileContext], "dict[str, Any] | None"]
"""Host code's per-file hook: its return value is kept as the file's metadata; raising records an error."""


@dataclass(frozen=True, slots=True)
class ScanSpec:
    """Everything a scan actor needs to walk one job from its checkpoint."""

    job: Job
    library: Library
    token: int


@dataclass(frozen=True, slots=True)
class ScanEnded:
    """A scan actor finished its walk or stopped on its own: outcome is completed, paused, fenced or cancelled."""

    job_id: int
    token: int
    outcome: str
    job: Job | None = None


@dataclass(frozen=True, slots=True)
class ScanCrashed:
    """A scan actor died of an error; `code` is its ScanguardError code (store_unavailable is not a crash)."""

    job_id: int
    token: int
    error: str
    code: str = ScanguardError.code


@dataclass(frozen=True, slots=True)
class _Begin:
    pass


@dataclass(frozen=True, slots=True)
class _NextBatch:
    pass


@dataclass(slots=True)
class _Tally:
    found: int = 0
    processed: int = 0
    skipped: int = 0
    changed: int = 0
    bytes: int = 0
    errors: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


class ScanActor(pykka.ThreadingActor):
    """Owns the walk of one job; every batch commits atomically under its fencing token."""

    use_daemon_thread = True  # a walk stuck in a system call is abandoned (fenced), never waited for at exit

    def __init__(
        self,
        spec: ScanSpec,
        *,
        config: Config,
        store: Any,
        reads: Any = None,
        supervisor: pykka.ActorRef[Any],
        cancel: threading.Event,
        processor: Processor | None = None,
        fs: FileSystem | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        self.store = store
        # range reads may use the read-only store: ranges of successive batches never overlap
        self.reads = reads if reads is not None else store
        self.supervisor = supervisor
        self.cancel = cancel
        self.processor = processor
        self.fs = fs
        self.rule = MediaRule.from_config(config.scan)
        self.checkpoint = spec.job.checkpoint
        self.total: int | None = spec.job.total_estimate
        self._walk: Iterator[WalkItem] | None = None
        self._pending: Any = None
        self._last_tick = time.monotonic()
        self._ended = False

    @property
    def job_id(self) -> int:
        return self.spec.job.id

    def on_start(self) -> None:
        # the real start-up is a message, so that its failure reaches on_failure and the supervisor
        self.actor_ref.tell(_Begin())

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        code = exc.code if isinstance(exc, ScanguardError) else ScanguardError.code
        self._end(ScanCrashed(self.job_id, self.spec.token, f"{type(exc).__name__}: {exc}", code))

    def on_receive(self, message: Any) -> Any:
        if self.cancel.is_set():
            self._finish_as("cancelled")
            return None
        match message:
            case _Begin():
                self._begin()
            case _NextBatch():
                self._batch()
            case _:
                return super().on_receive(message)
        return None

    # ---- lifecycle ----------------------------------------------------------------------------

    def _end(self, message: ScanEnded | ScanCrashed) -> None:
        if not self._ended:
            self._ended = True
            try:
                self.supervisor.tell(message)
            except pykka.ActorDeadError:
                log.info("scan.supervisor_gone", job_id=self.job_id, outcome=type(message).__name__)

    def _finish_as(self, outcome: str, job: Job | None = None) -> None:
        self._end(ScanEnded(self.job_id, self.spec.token, outcome, job))
        self.stop()

    def _begin(self) -> None:
        root = self.spec.library.path
        if not os.path.isdir(root):
            self._pause_root(f"{root} is missing or not a directory")
            return
        if self.total is None and self.checkpoint is None:
            # a new job with no completed predecessor (create_job sets that count): count now
            self.total = count_media(root, self.rule, follow_symlinks=self.config.scan.follow_symlinks)
        self._walk = iter(
            Walk(
                root,
                self.rule,
                after=self.checkpoint,
                follow_symlinks=self.config.scan.follow_symlinks,
                fs=self.fs,
            )
        )
        log.info(
            "scan.walking",
            job_id=self.job_id,
            library_id=self.spec.library.id,
            checkpoint=self.checkpoint,
            total_estimate=self.total,
        )
        self.actor_ref.tell(_NextBatch())

    def _pause_root(self, error: str) -> None:
        try:
            job = self.store.pause_job(
                self.job_id, "root_unavailable", error=error, token=self.spec.token
            ).get()
        except (Fenced, IllegalTransition):
            self._finish_as("fenced")
            return
        self._finish_as("paused", job)

    # ---- one batch ----------------------------------------------------------------------------

    def _take(self) -> tuple[list[WalkItem], bool]:
        assert self._walk is not None
        cfg = self.config.scan
        deadline = time.monotonic() + cfg.batch_seconds
        items: list[WalkItem] = []
        for item in self._walk:
            items.append(item)
            if len(items) >= cfg.batch_size or self.cancel.is_set() or time.monotonic() >= deadline:
                return items, False
        return items, True

    def _batch(self) -> None:
        try:
            items, done = self._take()
        except RootUnavailable as exc:
            self._pause_root(str(exc))
            return
        if self.cancel.is_set():
            self._finish_as("cancelled")
            return
        root = self.spec.library.path
        unreadable = any(isinstance(i, Skipped) and i.reason == "unreadable" for i in items)
        if unreadable and not os.path.isdir(root):
            # the root went away during this batch: its unreadable entries are unmounted, not gone, so the
            # batch is not committed and the checkpoint stays before them for the resume
            self._pause_root(f"{root} vanished during the walk")
            return
        after = self.checkpoint
        upto = None if done or not items else items[-1].path
        existing = self.reads.existing_files(self.spec.library.id, after, upto).get()
        if not self._confirm_pending():
            return
        tally = _Tally()
        upserts: list[FileRow] = []
        for item in items:
            if self.cancel.is_set():
                # paused or deleted meanwhile: the batch would be fenced anyway; spare the host processor
                self._finish_as("cancelled")
                return
            if isinstance(item, Skipped):
                tally.skip(item.reason)
                continue
            tally.found += 1
            tally.processed += 1
            known = existing.pop(item.path, None)
            if (
                known is not None
                and not known.missing
                and known.size == item.size
                and known.mtime == item.mtime
            ):
                continue
            if known is not None:
                tally.changed += 1
            tally.bytes += item.size
            upserts.append(self._row(item, tally))
        vanished = tuple(e.id for e in existing.values() if not e.missing)
        now = time.monotonic()
        batch = BatchCommit(
            job_id=self.job_id,
            library_id=self.spec.library.id,
            token=self.spec.token,
            checkpoint=items[-1].path if items else None,
            upserts=tuple(upserts),
            vanished_ids=vanished,
            found=tally.found,
            processed=tally.processed,
            skipped=tally.skipped,
            changed=tally.changed,
            bytes=tally.bytes,
            errors=tally.errors,
            skip_reasons=tally.reasons,
            elapsed=now - self._last_tick,
            total_estimate=self.total,
        )
        self._last_tick = now
        if items:
            self.checkpoint = items[-1].path
        # the commit runs on the store's thread while this thread walks the next batch
        self._pending = self.store.commit_batch(batch)
        if done:
            self._complete()
        else:
            self.actor_ref.tell(_NextBatch())

    def _confirm_pending(self) -> bool:
        """Wait for the previous batch's commit; a fenced writer stops here, having written nothing more."""
        if self._pending is None:
            return True
        pending, self._pending = self._pending, None
        try:
            pending.get()
        except Fenced:
            log.info("scan.fenced", job_id=self.job_id, token=self.spec.token)
            self._finish_as("fenced")
            return False
        return True

    def _row(self, item: Found, tally: _Tally) -> FileRow:
        if self.processor is None and self.config.scan.quick_hash_bytes <= 0:
            return FileRow(item.path, item.size, item.mtime, item.media_type)  # nothing to read or hash
        abs_path = os.path.join(self.spec.library.path, item.path)
        digest = quick_hash(abs_path, item.size, self.config.scan.quick_hash_bytes)
        meta: dict[str, Any] | None = None
        error: str | None = None
        if self.processor is not None:
            ctx = FileContext(
                self.spec.library.id,
                self.job_id,
                self.spec.library.path,
                item.path,
                abs_path,
                item.size,
                item.mtime,
                item.media_type,
            )
            try:
                meta = self.processor(ctx)
            except FatalProcessorError:
                raise
            except Exception as exc:  # noqa: BLE001 - a host processor failing on one file is recorded, not fatal
                error = f"{type(exc).__name__}: {exc}"
                tally.errors += 1
                log.warning("scan.processor_failed", job_id=self.job_id, path=item.path, error=error)
        return FileRow(item.path, item.size, item.mtime, item.media_type, digest, error, meta)

    def _complete(self) -> None:
        if not self._confirm_pending():
            return
        try:
            job = self.store.finish_job(self.job_id, self.spec.library.id, self.spec.token).get()
        except Fenced:
            self._finish_as("fenced")
            return
        self._finish_as(job.status, job)
