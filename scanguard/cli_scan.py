"""`scanguard scan PATH`: one library scanned now with a progress bar; Ctrl-C pauses, a rerun resumes."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from tqdm import tqdm

from scanguard.config import Config
from scanguard.exit_codes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PAUSED
from scanguard.records import Job
from scanguard.runtime import Runtime

REFRESH_SECONDS = 0.25


def _job_for(rt: Runtime, path: Path, kind: str, *, retry_failed: bool) -> Job:
    """Resume this folder's paused job if there is one; otherwise start a new scan."""
    resolved = str(path.expanduser().resolve())
    library = next((lib for lib in rt.list_libraries() if lib.path == resolved), None)
    if library is None:
        library = rt.add_library(resolved, kind=kind)
    active = rt.list_jobs(library_id=library.id, limit=1)
    current = next((j for j in active.items if j.active), None)
    if current is not None and current.status == "paused":
        print(f"resuming job {current.id} from {current.checkpoint or 'the start'}", file=sys.stderr)
        return rt.resume_scan(current.id)
    return rt.start_scan(library.id, retry_failed=retry_failed)


def run_scan(
    cfg: Config,
    path: Path,
    kind: str,
    stop: threading.Event,
    *,
    progress: bool = True,
    retry_failed: bool = False,
) -> int:
    with Runtime.start(cfg, watch=False) as rt:  # one scan, then gone: no watchers
        job = _job_for(rt, path, kind, retry_failed=retry_failed)
        print(f"job {job.id}: scanning {path}", file=sys.stderr)
        changed = threading.Event()
        rt.subscribe(lambda e: changed.set() if e.job_id == job.id else None)
        bar = tqdm(total=job.total_estimate or None, unit="file", disable=not progress, file=sys.stderr)
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
                    print(f"paused (store_unavailable): {waits[job.id]}", file=sys.stderr)
                    return EXIT_PAUSED
                changed.wait(REFRESH_SECONDS)
                changed.clear()
        finally:
            bar.close()
        if stop.is_set():
            print(
                f"interrupted: job {job.id} paused at {job.checkpoint!r}; run again to resume",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
    summary = (
        f"job {job.id} {job.status}: {job.files_processed} media files, {job.files_changed} changed, "
        f"{job.files_skipped} skipped, {job.files_removed} missing, {job.errors} errors"
    )
    print(summary, file=sys.stderr)
    if job.errors:
        print(
            f"{job.errors} files could not be read: scanguard files --library {job.library_id} --errors",
            file=sys.stderr,
        )
    if job.status == "completed":
        return EXIT_OK
    if job.status == "paused":
        print(f"paused ({job.pause_reason}): {job.last_error or ''}", file=sys.stderr)
        return EXIT_PAUSED
    print(f"failed: {job.last_error}", file=sys.stderr)
    return EXIT_ERROR
