"""`scanguard watch PATH`: add the folder if new, scan it, then follow its changes in the foreground until
Ctrl-C or SIGTERM, one line per job; what runs then is paused, as `scanguard scan` does."""

from __future__ import annotations

import threading
from pathlib import Path

from scanguard.config import Config
from scanguard.exit_codes import EXIT_OK
from scanguard.logs import say
from scanguard.records import Event, Job
from scanguard.runtime import Runtime

FINISHED = frozenset({"job.completed", "job.failed", "job.paused"})


def job_line(job: Job) -> str:
    """One line per job: what asked for it, over what, and what it found."""
    scope = "the whole library" if not job.scope else ", ".join(job.scope[:3])
    if len(job.scope) > 3:
        scope += f" and {len(job.scope) - 3} more"
    line = (
        f"job {job.id} {job.trigger} {job.status}: {scope}: {job.files_processed} media files, "
        f"{job.files_changed} changed, {job.files_moved} moved, {job.files_removed} missing, "
        f"{job.errors} errors, {job.active_seconds:.1f}s"
    )
    if job.pause_reason:
        line += f" (paused: {job.pause_reason})"
    return line


def run_watch(cfg: Config, path: Path, kind: str, stop: threading.Event) -> int:
    with Runtime.start(cfg, watch=False) as rt:
        resolved = str(path.expanduser().resolve())
        library = next((lib for lib in rt.list_libraries() if lib.path == resolved), None)
        if library is None:
            library = rt.add_library(resolved, kind=kind, watch=True)
            say(f"library {library.id}: added {resolved}")
        elif not library.watch.enabled:
            library = rt.set_watch(library.id, True)
            say(f"library {library.id}: watch switched on")
        library_id = library.id
        paused = next(
            (j for j in rt.current_jobs() if j.library_id == library_id and j.status == "paused"), None
        )
        if paused is not None:
            say(f"resuming job {paused.id} from {paused.checkpoint or 'the start'}")
            rt.resume_scan(paused.id)

        def show(event: Event) -> None:
            if event.library_id != library_id:
                return
            if event.kind in FINISHED and event.job_id is not None:
                print(job_line(rt.get_job(event.job_id)), flush=True)
            elif event.kind.startswith("watch."):
                reason, message = event.data.get("reason"), event.data.get("message")
                print(
                    f"{event.kind} {event.data.get('state', '')} {reason or ''}: {message or ''}", flush=True
                )

        rt.subscribe(show)
        rt.watch([library_id])
        say(f"watching {resolved} (Ctrl-C to stop)")
        stop.wait()
        say("stopping: a running job is paused, and resumed by the next scan or watch")
    return EXIT_OK
