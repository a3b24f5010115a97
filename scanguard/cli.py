"""The `scanguard` command line: serve, scan (with a progress bar), watch, status, events, files."""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanguard.config import Config, load_config
from scanguard.errors import InvalidScope, ScanguardError
from scanguard.exit_codes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PAUSED, EXIT_USAGE
from scanguard.records import EVENT_FAMILIES

if TYPE_CHECKING:
    from scanguard.records import Library

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PAUSED", "EXIT_USAGE", "main"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="a TOML config file (see config.toml)")
    parser.add_argument("--database", metavar="URL", help="sqlite:///path.db or postgresql://user@host/db")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scanguard", description="Supervised, crash-safe media library scans."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service: scans, safeguards and the admin HTTP API")
    _common(serve)
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")

    scan = sub.add_parser(
        "scan", help="scan one folder now, with a progress bar; Ctrl-C pauses, rerun resumes"
    )
    _common(scan)
    scan.add_argument(
        "path",
        help="the folder to scan (added as a library if new); a folder or file inside a library's root "
        "scans just that part of the library",
    )
    scan.add_argument(
        "--library",
        type=int,
        metavar="ID",
        help="scan PATH (relative to this library's root, or absolute inside it) as part of library ID",
    )
    scan.add_argument("--kind", default="mixed", help="library kind: mixed, music, movies, shows, photos")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar (a line per state change)")
    scan.add_argument(
        "--processors",
        metavar="NAMES",
        help="per-file work, comma-separated: audio_tags, image_info, video_probe or package.module:function "
        "(default: [scan] processors)",
    )
    scan.add_argument(
        "--retry-failed",
        action="store_true",
        help="also process again unchanged files whose per-file work failed before",
    )

    watch = sub.add_parser(
        "watch", help="follow one folder in the foreground: add it if new, scan it, then scan its changes"
    )
    _common(watch)
    watch.add_argument("path", help="the folder to watch (added as a library if new)")
    watch.add_argument("--kind", default="mixed", help="library kind: mixed, music, movies, shows, photos")

    status = sub.add_parser("status", help="libraries (with their watch state) and current jobs")
    _common(status)
    status.add_argument("--json", action="store_true", help="print JSON")

    events = sub.add_parser("events", help="recorded events, oldest first")
    _common(events)
    events.add_argument("--job", type=int, help="only this job's events")
    events.add_argument("--library", type=int, help="only this library's events")
    events.add_argument(
        "--kind", help="only this kind (a prefix ending with '.' matches a family, e.g. job.)"
    )
    events.add_argument(
        "--family",
        choices=tuple(EVENT_FAMILIES),
        help="only this family: job (a job's life and the safeguards' decisions), watch, file, library, system",
    )
    events.add_argument("--limit", type=int, default=100)
    events.add_argument("--follow", action="store_true", help="keep printing new events until Ctrl-C")

    files = sub.add_parser("files", help="indexed media files, by library and path")
    _common(files)
    files.add_argument("--library", type=int, help="only this library (default: every library)")
    files.add_argument(
        "--errors", action="store_true", help="only files whose per-file work failed, with why"
    )
    files.add_argument("--limit", type=int, default=1000, help="at most this many per library (default 1000)")
    files.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def _config(args: argparse.Namespace, **overrides: Any) -> Config:
    sections: dict[str, dict[str, Any]] = {}
    if args.database:
        sections["database"] = {"url": args.database}
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    return load_config(args.config, **sections)


class _StopSignal:
    """SIGINT/SIGTERM only set an event; the command's one shutdown path does the rest."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        self.signum = signum
        self.event.set()


def cmd_scan(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {"log": {"level": "warning"}} if not args.no_progress else {}
    if args.processors is not None:
        overrides["scan"] = {"processors": args.processors}
    # what the imports make lives as long as this process: no collection would find garbage there, and
    # the collections their allocations set off cost a scan's start-up (and its walk's head start) time
    gc.disable()
    cfg = _config(args, **overrides)
    ahead = args.library is None and _walk_ahead(cfg, Path(args.path))
    if cfg.scan.processors or not ahead:
        from scanguard.processing.preload import prestart

        # the forkserver that forks the workers (and a walk not started ahead) imports while this
        # process does
        prestart(cfg.scan.processors)
    from scanguard.cli_scan import run_scan

    gc.freeze()  # ... and no later collection needs to look at it again
    gc.enable()

    stop = _StopSignal()
    stop.install()
    return run_scan(
        cfg,
        Path(args.path),
        args.kind,
        stop.event,
        progress=not args.no_progress,
        retry_failed=args.retry_failed,
        library_id=args.library,
    )


def _walk_ahead(cfg: Config, path: Path) -> bool:
    """Start the walk this scan most likely wants while the process imports the rest (a few tenths of a
    second): PATH as a library root, walked whole from the start, and counted when the database is a new
    file (a library scanned before has the count of its last scan). The scan takes it if that is so; the
    walk's own start-up, and what it lists meanwhile, are then off the scan's time. Whether one started."""
    from scanguard.processing.preload import forkserver_preload
    from scanguard.walk import MediaRule
    from scanguard.walk_child import WalkParams
    from scanguard.walk_source import walk_ahead

    root = path.expanduser().resolve()
    if not root.is_dir():
        return False
    scan = cfg.scan
    params = WalkParams(
        str(root),
        MediaRule.from_config(scan).types,
        None,
        scan.follow_symlinks,
        scan.walkers,
        (),
        _new_sqlite_file(cfg.database.url),
        scan.walk_nice,
    )
    walk_ahead(params, forkserver_preload(scan.processors))
    return True


def _new_sqlite_file(url: str) -> bool:
    """Whether the database is a SQLite file not made yet (read from the URL's path, without a driver)."""
    prefix = "sqlite:///"
    path = url[len(prefix) :].split("?", 1)[0] if url.startswith(prefix) else ""
    return bool(path) and path != ":memory:" and not Path(path).expanduser().exists()


def cmd_watch(args: argparse.Namespace) -> int:
    from scanguard.cli_watch import run_watch

    cfg = _config(args)
    stop = _StopSignal()
    stop.install()
    return run_watch(cfg, Path(args.path), args.kind, stop.event)


def cmd_serve(args: argparse.Namespace) -> int:
    from scanguard.http.serve import serve

    http: dict[str, Any] = {}
    if args.host:
        http["host"] = args.host
    if args.port is not None:
        http["port"] = args.port
    cfg = _config(args, http=http)
    stop = _StopSignal()
    stop.install()
    return serve(cfg, stop.event)


def cmd_status(args: argparse.Namespace) -> int:
    from scanguard.runtime import Runtime

    cfg = _config(args, log={"level": "warning"})
    with Runtime.start(cfg, passive=True) as rt:
        libraries = rt.list_libraries()
        jobs = rt.current_jobs()
        instances = rt.instances()
    if args.json:
        print(
            json.dumps(
                {
                    "libraries": [x.to_dict() for x in libraries],
                    "jobs": [j.to_dict() for j in jobs],
                    "instances": [i.to_dict() for i in instances],
                },
                indent=2,
            )
        )
        return EXIT_OK
    print(f"{len(libraries)} libraries")
    for lib in libraries:
        print(
            f"  [{lib.id}] {lib.name}  {lib.path}  ({lib.kind}, {lib.media_files} files)  {_watch_text(lib)}"
        )
    print(f"{len(jobs)} current jobs")
    for job in jobs:
        reason = f" ({job.pause_reason})" if job.pause_reason else ""
        print(
            f"  job {job.id} library {job.library_id}: {job.status}{reason} {job.progress:.1f}% "
            f"{job.files_processed} files, {job.files_moved} moved, owner {job.owner}"
        )
        print(f"    {job.trigger} scan of {_scope_text(job.scope)}")
    print(f"{sum(i.live for i in instances)} live instances")
    for inst in instances:
        runs = ", ".join(f"job {j}" for j in inst.jobs) or "no scans"
        print(
            f"  {inst.id}  {'live' if inst.live else 'gone'}  pid {inst.pid}  v{inst.version}  "
            f"heartbeat {inst.heartbeat_at.isoformat(timespec='seconds')}  runs {runs}"
        )
    return EXIT_OK


def _watch_text(lib: Library) -> str:
    """`watch: polling (watch_limit), 3 pending` — the library's watch state in one phrase."""
    watch = lib.watch
    if not watch.enabled:
        return "watch: off"
    text = f"watch: {watch.state}"
    if watch.reason:
        text += f" ({watch.reason})"
    if watch.pending:
        text += f", {watch.pending} pending"
    return text


def _scope_text(scope: tuple[str, ...], shown: int = 3) -> str:
    if not scope:
        return "the whole library"
    more = f" (+{len(scope) - shown} more)" if len(scope) > shown else ""
    return ", ".join(scope[:shown]) + more


def cmd_events(args: argparse.Namespace) -> int:
    from scanguard.runtime import Runtime

    cfg = _config(args, log={"level": "warning"})
    stop = _StopSignal()
    stop.install()
    with Runtime.start(cfg, passive=True) as rt:
        after = 0
        while True:
            batch = rt.events(
                job_id=args.job,
                library_id=args.library,
                kind=args.kind,
                family=args.family,
                after_id=after,
                limit=args.limit,
            )
            for event in batch:
                print(json.dumps(event.to_dict()), flush=True)
                after = event.id
            if not args.follow or stop.event.wait(0.5):
                return EXIT_OK


def cmd_files(args: argparse.Namespace) -> int:
    from scanguard.input_checks import check_id
    from scanguard.runtime import Runtime

    cfg = _config(args, log={"level": "warning"})
    limit = check_id("limit", args.limit)
    with Runtime.start(cfg, passive=True) as rt:
        if args.library is not None:
            libraries = [rt.get_library(check_id("library", args.library))]
        else:
            libraries = list(rt.list_libraries())
        for lib in libraries:
            page = rt.list_files(lib.id, limit=limit, errors=args.errors)
            for f in page.items:
                if args.json:
                    print(json.dumps({**f.to_dict(), "library_path": lib.path}), flush=True)
                elif args.errors:
                    print(f"{lib.id}\t{f.path}\t{f.error}")
                else:
                    print(f"{lib.id}\t{f.path}\t{f.media_type}\t{f.size}")
            if page.total > len(page.items):
                print(
                    f"library {lib.id}: {page.total - len(page.items)} more (raise --limit)", file=sys.stderr
                )
    return EXIT_OK


COMMANDS = {
    "scan": cmd_scan,
    "serve": cmd_serve,
    "watch": cmd_watch,
    "status": cmd_status,
    "events": cmd_events,
    "files": cmd_files,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except InvalidScope as exc:
        print(f"scanguard: error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except ScanguardError as exc:
        print(f"scanguard: error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # the reader went away (`scanguard files | head`): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    finally:
        # the process ends here: what is left goes with it, rather than through the interpreter's last full
        # collection of every object at exit (a tenth of a second of CPU after a scan, all of it serial)
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
