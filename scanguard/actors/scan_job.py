"""The ScanActor: walks one library for one job, one batch per message, telling itself to go on."""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pykka
import structlog

from scanguard.actors.liveness import Answering
from scanguard.config import Config
from scanguard.errors import Fenced, IllegalTransition, ScanguardError
from scanguard.listing import BackgroundCount
from scanguard.moves import MoveFinder
from scanguard.processing.file_work import Failure, FileWork, ScanWork
from scanguard.processing.preload import forkserver_preload
from scanguard.processing.window import Entry, Ready, Segment, Window
from scanguard.records import FileRow, Identity, Job, Library, Moved
from scanguard.store.batches import BatchCommit, Existing
from scanguard.store.moves import signed64
from scanguard.store.reads import ExistingFiles, HasFilesAfter, MoveSources
from scanguard.store.seam import Later, Store
from scanguard.walk import (
    FileSystem,
    Found,
    Listed,
    ListedFile,
    MediaRule,
    OsFileSystem,
    RootUnavailable,
    Skipped,
    Walk,
    as_item,
    count_media,
    quick_hash,
)
from scanguard.walk_child import WalkParams
from scanguard.walk_source import InlineWalk, WalkSource, drop_walks_ahead, take_walk

log = structlog.get_logger("scanguard.scan")


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


@dataclass(frozen=True, slots=True)
class _Stretch:
    """One walked stretch: its entries, the database's rows of its path range, its moved files."""

    items: list[Listed]
    existing: dict[str, Existing]
    moved: dict[str, Moved]


@dataclass(slots=True)
class _Tally:
    found: int = 0
    processed: int = 0
    skipped: int = 0
    changed: int = 0
    bytes: int = 0
    errors: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    quarantined: list[Failure] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


class ScanActor(Answering):
    """Owns the walk of one job; every batch commits atomically under its fencing token."""

    use_daemon_thread = True  # a walk stuck in a system call is abandoned (fenced), never waited for at exit

    def __init__(
        self,
        spec: ScanSpec,
        *,
        config: Config,
        store: Store,
        supervisor: pykka.ActorRef[Any],
        cancel: threading.Event,
        work: FileWork | None = None,
        fs: FileSystem | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        self.store = store
        self.supervisor = supervisor
        self.cancel = cancel
        self.work = ScanWork(
            work or FileWork(), spec.library.id, spec.job.id, spec.library.path, config.scan.file_timeout
        )
        self.fs = fs
        self.rule = MediaRule.from_config(config.scan)
        self.checkpoint = spec.job.checkpoint
        self.scope = spec.job.scope  # () = the whole library
        self.total: int | None = spec.job.total_estimate
        self._walk: WalkSource | None = None  # the walk, and the counting pass beside it
        self._walked_to = spec.job.checkpoint  # the last path walked (committed or in the window)
        self._walk_done = False
        # no rows past the checkpoint when the walk begins: none appear but this scan's own, behind its
        # walk (one active job per library), so no stretch needs a range read
        self._rows_ahead = True
        # rows a new path may be (moved): none in a library that had no rows when the walk began
        self._may_move = True
        self._mover = MoveFinder(
            spec.library.path, lambda inodes: store.read(MoveSources(spec.library.id, inodes))
        )
        self._window = Window()
        # with per-file work the walk runs ahead of the commits, to keep every worker busy
        pool = self.work.work.pool
        self._ahead = max(2 * config.scan.batch_size, 64 * pool.workers) if pool else config.scan.batch_size
        self._pending: Later[Job] | None = None
        self._carry: BatchCommit | None = None  # walked stretches that wrote nothing, not committed yet
        self._quarantined: list[Failure] = []
        self._last_tick = time.monotonic()
        self._last_commit = time.monotonic()
        self._ended = False
        # a scan waiting for a slow file still commits (its heartbeat) well within the stall threshold
        stall = config.safeguards.stall_threshold
        self._commit_every = (
            min(config.scan.batch_seconds, stall / 3) if stall > 0 else config.scan.batch_seconds
        )

    @property
    def job_id(self) -> int:
        return self.spec.job.id

    def on_start(self) -> None:
        # the real start-up is a message, so that its failure reaches on_failure and the supervisor
        self.actor_ref.tell(_Begin())

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._release()
        code = exc.code if isinstance(exc, ScanguardError) else ScanguardError.code
        self._end(ScanCrashed(self.job_id, self.spec.token, f"{type(exc).__name__}: {exc}", code))

    def on_stop(self) -> None:
        self._release()

    def on_receive(self, message: Any) -> Any:
        if self.cancel.is_set():
            self._finish_as("cancelled")
            return None
        match message:
            case _Begin():
                self._begin()
            case _NextBatch():
                self._step()
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

    def _release(self) -> None:
        """Let go of what the scan holds: its file work, its walk (process or threads), its counting pass."""
        self.work.release()
        if self._walk is not None:
            self._walk.close()

    def _finish_as(self, outcome: str, job: Job | None = None) -> None:
        self._release()
        self._end(ScanEnded(self.job_id, self.spec.token, outcome, job))
        self.stop()

    def _begin(self) -> None:
        root = self.spec.library.path
        if not os.path.isdir(root):
            self._pause_root(f"{root} is missing or not a directory")
            return
        cfg = self.config.scan
        library_id = self.spec.library.id
        if self.total is None and self.scope:
            # a scoped job counts its scope now: a few folders, listed before the walk lists them again
            self.total = count_media(root, self.rule, follow_symlinks=cfg.follow_symlinks, scope=self.scope)
        # no completed predecessor (create_job sets that count), or a resumed job stopped before its
        # count was done: count while walking, so that slow storage is not listed twice before a batch
        count = self.total is None
        ahead = False
        if self.fs is None and not self.scope and sys.executable:
            # the whole library: listed and stat'ed by a process of its own, forked in a few milliseconds
            # by the forkserver — a scoped scan (a few folders) walks here instead
            self._walk, ahead = take_walk(
                WalkParams(
                    root,
                    self.rule.types,
                    self.checkpoint,
                    cfg.follow_symlinks,
                    cfg.walkers,
                    self.scope,
                    count,
                    cfg.walk_nice,
                ),
                forkserver_preload(cfg.processors),
            )
        else:
            drop_walks_ahead()  # none is this scan's: a walk ahead is a whole library's
        self._rows_ahead = self.store.read(HasFilesAfter(library_id, self.checkpoint, self.scope))
        if self.scope or self.checkpoint:
            self._may_move = self.store.read(HasFilesAfter(library_id, None))
        else:
            self._may_move = self._rows_ahead
        self.work.start()
        if self._walk is None:
            walk = Walk(
                root,
                self.rule,
                after=self.checkpoint,
                follow_symlinks=cfg.follow_symlinks,
                fs=self.fs,
                walkers=cfg.walkers,
                scope=self.scope,
            )
            background = (
                BackgroundCount(
                    root, self.rule.media_type, follow_symlinks=cfg.follow_symlinks, walkers=cfg.walkers
                )
                if count
                else None
            )
            self._walk = InlineWalk(walk.listed(), background)
        log.info(
            "scan.walking",
            job_id=self.job_id,
            library_id=self.spec.library.id,
            checkpoint=self.checkpoint,
            total_estimate=self.total,
            scope=list(self.scope),
            walk_pid=self._walk.pid,
            walk_ahead=ahead,
        )
        self.actor_ref.tell(_NextBatch())

    def _pause_root(self, error: str) -> None:
        try:
            job = self.store.pause_job(self.job_id, "root_unavailable", error=error, token=self.spec.token)
        except (Fenced, IllegalTransition):
            self._finish_as("fenced")
            return
        self._finish_as("paused", job)

    # ---- one step: walk ahead, commit what is ready --------------------------------------------

    def _step(self) -> None:
        self.work.watch()
        if not self.work.active:
            self._plain_step()
            return
        if not self._walk_done and self._window.pending < self._ahead and not self._walk_segment():
            return
        if not self._commit_ready():
            return
        if self._walk_done and not self._window:
            self._complete()
            return
        if self._walk_done or self._window.pending >= self._ahead:
            self._wait_for_head()
        self.actor_ref.tell(_NextBatch())

    def _stretch(self) -> _Stretch | None:
        """Walk one stretch and read what the database knows of its path range; None when the scan ended."""
        assert self._walk is not None
        cfg = self.config.scan
        try:
            items, done = self._walk.take(cfg.batch_size, cfg.batch_seconds, self.cancel)
        except RootUnavailable as exc:
            self._pause_root(str(exc))
            return None
        if self.cancel.is_set():
            self._finish_as("cancelled")
            return None
        root = self.spec.library.path
        unreadable = any(len(i) == 2 and i[1] == "unreadable" for i in items)
        if unreadable and not os.path.isdir(root):
            # the root went away during this stretch: its unreadable entries are unmounted, not gone, so
            # nothing of it is committed and the checkpoint stays before them for the resume
            self._pause_root(f"{root} vanished during the walk")
            return None
        after = self._walked_to
        upto = None if done or not items else items[-1][0]
        existing = (
            self.store.read(ExistingFiles(self.spec.library.id, after, upto, self.work.active, self.scope))
            if self._rows_ahead
            else {}
        )
        if items:
            self._walked_to = items[-1][0]
        self._walk_done = done
        return _Stretch(items, existing, self._moves(items, existing))

    def _vanished(self, existing: dict[str, Existing]) -> list[tuple[str, int]]:
        """The known rows of a stretch's range that its walk did not see (what is left of `existing`)."""
        claimed = self._mover.claimed
        return sorted((path, e.id) for path, e in existing.items() if not e.missing and e.id not in claimed)

    def _walk_segment(self) -> bool:
        """Walk one stretch, compare it with the database, hand its new and changed files to their work."""
        stretch = self._stretch()
        if stretch is None:
            return False
        existing, moved = stretch.existing, stretch.moved
        entries = [self._entry(as_item(item), existing, moved) for item in stretch.items]
        self.work.dispatch(entries)
        self._window.add(Segment(entries, self._vanished(existing)))
        return True

    def _entry(self, item: Found | Skipped, existing: dict[str, Existing], moved: dict[str, Moved]) -> Entry:
        if isinstance(item, Skipped):
            return Entry(item)
        known = existing.pop(item.path, None)
        if known is not None and known.id in self._mover.claimed:
            known = None  # its row moved away (a new file took its old path): this path is new
        if known is None and item.path in moved:
            return Entry(item, moved=moved[item.path])  # a known row, moved here: no work, no new row
        if (
            known is not None
            and not known.missing
            and known.size == item.size
            and known.mtime == item.mtime
            and not (known.failed and self.spec.job.retry_failed)
            and not (known.bare and self.work.reads(item.media_type))
        ):
            if known.identified:
                return Entry(item)  # unchanged: nothing to write, nothing to read
            # unchanged, but scanned before rows recorded identities: record it, nothing else
            return Entry(item, identity=Identity(known.id, signed64(item.device), signed64(item.inode)))
        return Entry(item, self._row(item), changed=known is not None)

    def _row(self, item: Found) -> FileRow:
        device, inode = signed64(item.device), signed64(item.inode)
        if not self.work.active and self.config.scan.quick_hash_bytes <= 0:
            # nothing to read or hash
            return FileRow(item.path, item.size, item.mtime, item.media_type, device=device, inode=inode)
        abs_path = os.path.join(self.spec.library.path, item.path)
        digest = quick_hash(abs_path, item.size, self.config.scan.quick_hash_bytes)
        return FileRow(item.path, item.size, item.mtime, item.media_type, digest, device=device, inode=inode)

    def _moves(self, items: list[Listed], existing: dict[str, Existing]) -> dict[str, Moved]:
        """The stretch's new paths that are known rows moved: one indexed read for the whole stretch."""
        if not self._may_move:
            return {}
        claimed = self._mover.claimed
        return self._mover.find(
            Found(*i) for i in items if len(i) == 6 and (i[0] not in existing or existing[i[0]].id in claimed)
        )

    def _wait_for_head(self) -> None:
        """Wait (at most until the next commit is due) for the oldest stretch's work, watching for a pause."""
        due = self._last_commit + self._commit_every
        while not self.cancel.is_set():
            self.work.watch()
            remaining = due - time.monotonic()
            blocker = self._window.head_blocker()
            if blocker is None or remaining <= 0:
                return
            # files finish about in order (a chunk at a time): wait for the first one not done
            concurrent.futures.wait((blocker,), timeout=min(remaining, 0.1))

    # ---- a scan without per-file work: each stretch is committed as soon as it is walked ---------

    def _plain_step(self) -> None:
        """Walk one stretch and commit it: no window, no object per entry, the walk's tuples written as
        they are (the hot path of a scan without processors)."""
        if not self._walk_done:
            stretch = self._stretch()
            if stretch is None:
                return
            batch = self._carried(self._plain_batch(stretch))
            if batch is not None and not self._send(batch, []):
                return
        if self._walk_done:
            self._complete()
            return
        self.actor_ref.tell(_NextBatch())

    def _carried(self, batch: BatchCommit) -> BatchCommit | None:
        """The batch to commit now, or None while stretches that write no row carry their counters on.

        An unchanged stretch (most of a rescan) has nothing to write but its counters and checkpoint: they
        ride with the next commit — a stretch that writes, the heartbeat once a commit is due, the end —
        instead of a transaction each. A scan stopped before then loses only counters whose checkpoint
        was not committed either: its resume walks those files again and counts them then.
        """
        if self._carry is not None:
            batch, self._carry = self._carry.then(batch), None
        if batch.checkpoint is None and not batch.writes:
            return None  # an empty last stretch, nothing carried
        due = time.monotonic() - self._last_commit >= self._commit_every
        if batch.writes or due or self._walk_done:
            return batch
        self._carry = batch
        return None

    def _plain_batch(self, stretch: _Stretch) -> BatchCommit:
        """One walked stretch as a batch: its new and changed files, moves, identities and counters."""
        existing, moved = stretch.existing, stretch.moved
        files: list[ListedFile] = []
        reasons: dict[str, int] = {}
        for item in stretch.items:
            if len(item) == 6:
                files.append(item)
            else:
                reasons[item[1]] = reasons.get(item[1], 0) + 1
        listed: list[ListedFile] = files
        moves: list[Moved] = []
        identities: list[Identity] = []
        changed = 0
        if existing or moved:  # a rescan: compare each file with its row
            listed = []
            claimed = self._mover.claimed
            retry = self.spec.job.retry_failed
            for item in files:
                path, size, mtime = item[0], item[1], item[2]
                known = existing.pop(path, None)
                if known is not None and known.id in claimed:
                    known = None  # its row moved away (a new file took its old path): this path is new
                if known is None:
                    if path in moved:
                        moves.append(moved[path])  # a known row, moved here: no new row
                    else:
                        listed.append(item)
                elif known.missing or known.size != size or known.mtime != mtime or (known.failed and retry):
                    listed.append(item)
                    changed += 1
                elif not known.identified:  # unchanged, scanned before rows recorded identities
                    identities.append(Identity(known.id, signed64(item[4]), signed64(item[5])))
        upserts: tuple[FileRow, ...] = ()
        if listed and self.config.scan.quick_hash_bytes > 0:
            upserts = tuple(self._row(Found(*item)) for item in listed)
            listed = []
        now = time.monotonic()
        batch = BatchCommit(
            job_id=self.job_id,
            library_id=self.spec.library.id,
            token=self.spec.token,
            checkpoint=stretch.items[-1][0] if stretch.items else None,
            upserts=upserts,
            listed=tuple(listed),
            vanished_ids=tuple(i for _, i in self._vanished(existing)),
            found=len(files),
            processed=len(files),
            skipped=len(stretch.items) - len(files),
            changed=changed,
            bytes=sum(f.size for f in upserts) + sum(f[1] for f in listed),
            skip_reasons=reasons,
            elapsed=now - self._last_tick,
            total_estimate=self._total(),
            moves=tuple(moves),
            identities=tuple(identities),
        )
        self._last_tick = now
        return batch

    # ---- commits ------------------------------------------------------------------------------

    def _commit_ready(self) -> bool:
        """Commit the ready prefix: a whole stretch at once, or — once a commit is due — what is done of it.

        Nothing ready when a commit is due still commits (no rows): the heartbeat of a scan waiting for
        a slow file, so the watchdog sees it alive while the file's own deadline runs.
        """
        due = time.monotonic() - self._last_commit >= self._commit_every
        committed = False
        while self._window and (self._window.head_complete() or due):
            ready = self._window.take()
            if ready is None:
                break
            if not self._commit(ready):
                return False
            committed = True
        if due and not committed and self._window:
            return self._commit(Ready([], (), None))
        return True

    def _commit(self, ready: Ready) -> bool:
        tally = _Tally()
        upserts: list[FileRow] = []
        moves: list[Moved] = []
        identities: list[Identity] = []
        for entry in ready.entries:
            if isinstance(entry.item, Skipped):
                tally.skip(entry.item.reason)
                continue
            tally.found += 1
            tally.processed += 1
            if entry.moved is not None:
                moves.append(entry.moved)
            if entry.identity is not None:
                identities.append(entry.identity)
            if entry.row is None:
                continue
            tally.changed += entry.changed
            tally.bytes += entry.row.size
            row = self.work.row(entry, tally.quarantined)  # a FatalProcessorError crashes the scan here
            tally.errors += row.error is not None
            upserts.append(row)
        now = time.monotonic()
        batch = BatchCommit(
            job_id=self.job_id,
            library_id=self.spec.library.id,
            token=self.spec.token,
            checkpoint=ready.checkpoint,
            upserts=tuple(upserts),
            vanished_ids=ready.vanished_ids,
            found=tally.found,
            processed=tally.processed,
            skipped=tally.skipped,
            changed=tally.changed,
            bytes=tally.bytes,
            errors=tally.errors,
            skip_reasons=tally.reasons,
            elapsed=now - self._last_tick,
            total_estimate=self._total(),
            quarantined=tuple(tally.quarantined),
            moves=tuple(moves),
            identities=tuple(identities),
        )
        self._last_tick = now
        return self._send(batch, tally.quarantined)

    def _send(self, batch: BatchCommit, quarantined: list[Failure]) -> bool:
        """Hand a batch to the store once the previous one is committed; False when the scan stopped."""
        if not self._confirm_pending():
            return False
        self.work.prune()
        self._last_commit = time.monotonic()
        if batch.checkpoint is not None:
            self.checkpoint = batch.checkpoint
        # the commit runs on the store's thread while this thread walks on
        self._pending = self.store.commit_batch(batch)
        self._quarantined = quarantined
        return True

    def _total(self) -> int | None:
        """The progress total: the job's, or the counting pass's once it is done (None until then)."""
        if self.total is None and self._walk is not None:
            # the count lists less than the walk: once the walk is done it is about done too, and the
            # job's last commits carry it (waiting no longer than a commit's interval, for the heartbeat)
            self.total = self._walk.total(self._commit_every if self._walk_done else 0.0)
        return self.total

    def _confirm_pending(self) -> bool:
        """Wait for the previous batch's commit; a fenced writer stops here, having written nothing more."""
        if self._pending is None:
            return True
        pending, self._pending = self._pending, None
        deadline = time.monotonic() + self.config.safeguards.operation_timeout
        while not pending.done(0.1) and time.monotonic() < deadline:
            if self.cancel.is_set():
                # stopped (paused, deleted, shutting down): the database already says so, and the batch
                # commits or is fenced without this scan waiting behind the writer's queue for it
                self._finish_as("cancelled")
                return False
        try:
            pending.result(max(0.0, deadline - time.monotonic()))  # one bound for the whole wait
        except Fenced:
            log.info("scan.fenced", job_id=self.job_id, token=self.spec.token)
            self._finish_as("fenced")
            return False
        self._count_quarantined()
        return True

    def _count_quarantined(self) -> None:
        quarantined, self._quarantined = self._quarantined, []
        self.work.count(quarantined)

    def _root_empty(self) -> bool:
        """Whether the library root lists nothing (an unmounted drive's mount point): a scoped scan's
        offline guard, since its own walk saw only the scope."""
        if not self.scope:
            return False  # a full walk's finish weighs what vanished against the whole library
        try:
            return not any(True for _ in (self.fs or OsFileSystem()).scandir(self.spec.library.path))
        except OSError:
            return True

    def _complete(self) -> None:
        if not self._confirm_pending():
            return
        root_empty = self._root_empty()
        try:
            job = self.store.finish_job(self.job_id, self.spec.library.id, self.spec.token, root_empty)
        except Fenced:
            self._finish_as("fenced")
            return
        self._finish_as(job.status, job)
