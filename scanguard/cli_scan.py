"""`scanguard scan PATH`: one library scanned now with a progress bar; Ctrl-C pauses, a rerun resumes."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from scanguard.config import Config
from scanguard.exit_codes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PAUSED
from scanguard.logs import say
from scanguard.records import Job, Library
from scanguard.runtime import Runtime
from scanguard.scope import normalize_scope

if TYPE_CHECKING:
    from tqdm import tqdm

REFRESH_SECONDS = 0.25


def _target(rt: Runtime, path: Path, kind: str, library_id: int | None) -> tuple[Library, list[str]]:
    """The library to scan and the paths of it (none: all of it).

    With `library_id`, PATH is a scope of that library as given (InvalidScope if it leaves the root).
    Otherwise a library whose root is PATH is scanned whole; one whose root holds PATH (the innermost,
    if libraries nest) is scanned at PATH alone — PATH may be gone, its rows are then marked missing;
    any other folder becomes a new library."""
    if library_id is not None:
        return rt.get_library(library_id), [str(path)]
    resolved = path.expanduser().resolve()
    libraries = rt.list_libraries()
    library = next((lib for lib in libraries if lib.path == str(resolved)), None)
    if library is not None:
        return library, []
    holders = [lib for lib in libraries if Path(lib.path) in resolved.parents]
    if holders:
        library = max(holders, key=lambda lib: len(lib.path))
        return library, [str(resolved)]
    return rt.add_library(str(resolved), kind=kind), []


def _job_for(rt: Runtime, path: Path, kind: str, *, retry_failed: bool, library_id: int | None) -> Job:
    """Resume the paused job of this library and scope if there is one; otherwise start a new scan."""
    library, paths = _target(rt, path, kind, library_id)
    scope = normalize_scope(paths, library.path)
    active = rt.list_jobs(library_id=library.id, limit=1)
    current = next((j for j in active.items if j.active), None)
    if current is not None and current.status == "paused" and current.scope == scope:
        say(f"resuming job {current.id} from {current.checkpoint or 'the start'}")
        return rt.resume_scan(current.id)
    return rt.start_scan(library.id, retry_failed=retry_failed, paths=scope)


def _bar(total: int | None, progress: bool) -> tqdm:
    """The progress bar; without one, tqdm (and its import) is not needed."""
    if not progress:
        return _NoBar()
    from tqdm import tqdm  # noqa: PLC0415 - imported only for a bar: start-up time counts

    return tqdm(total=total or None, unit="file", file=sys.stderr)


class _NoBar:
    """What the scan loop calls on a bar, doing nothing (`--no-progress`)."""

    total: int | None = None
    n = 0

    def set_postfix(self, **_: object) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


def run_scan(
    cfg: Config,
    path: Path,
    kind: str,
    stop: threading.Event,
    *,
    progress: bool = True,
    retry_failed: bool = False,
    library_id: int | None = None,
) -> int:
    with Runtime.start(cfg, watch=False) as rt:  # one scan, then gone: no watchers
        job = _job_for(rt, path, kind, retry_failed=retry_failed, library_id=library_id)
        part = f" ({', '.join(job.scope)} of library {job.library_id})" if job.scope else ""
        say(f"job {job.id}: scanning {path}{part}")
        changed = threading.Event()
        rt.subscribe(lambda e: changed.set() if e.job_id == job.id else None)
        bar = _bar(job.total_estimate, progress)
        try:
            while not stop.is_set():
                job = rt.get_job(job.id)
                if job.total_estimate and bar.total != job.total_estimate:
                    bar.total = job.total_estimate
                bar.n = job.files_processed
                bar.set_postfix(
                    status=job.status, skipped=job.files_skipped, errors=job.errors, refresh=False
                )
                bar.refresh()
                if not job.active or job.status == "paused":
                    break
                if job.id in (waits := rt.store_waits()):
                    # the store failed under the scan and cannot even record the pause: stop here; the
                    # next run finds the job (orphaned by this process) and resumes it from its checkpoint
                    say(f"paused (store_unavailable): {waits[job.id]}")
                    return EXIT_PAUSED
                changed.wait(REFRESH_SECONDS)
                changed.clear()
        finally:
            bar.close()
        if stop.is_set():
            say(f"interrupted: job {job.id} paused at {job.checkpoint!r}; run again to resume")
            return EXIT_INTERRUPTED
    summary = (
        f"job {job.id} {job.status}: {job.files_processed} media files, {job.files_changed} changed, "
        f"{job.files_moved} moved, {job.files_skipped} skipped, {job.files_removed} missing, "
        f"{job.errors} errors"
    )
    say(summary)
    if job.errors:
        say(f"{job.errors} files could not be read: scanguard files --library {job.library_id} --errors")
    if job.status == "completed":
        return EXIT_OK
    if job.status == "paused":
        say(f"paused ({job.pause_reason}): {job.last_error or ''}")
        return EXIT_PAUSED
    say(f"failed: {job.last_error}")
    return EXIT_ERROR
