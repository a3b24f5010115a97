"""A host application embedding scanguard, for end-to-end tests: a real process with scans running.

    python -m tests.e2e.host_app --database URL --library PATH [--library PATH] [--hang DIR]

Starts a Runtime (settings from SCANGUARD_* variables), starts one scan per library, prints one JSON
line `{"jobs": [...]}` to stdout, then waits. SIGTERM/SIGINT only set an event; the one shutdown path is
`rt.stop()`, then exit 0. With `--hang DIR`, listing that directory blocks for ever (a hung mount),
and a line `{"hung": DIR}` says when a scan got stuck there.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from scanguard import Runtime, load_config


class HungMount:
    """The real filesystem, except that listing the chosen directories never returns."""

    def __init__(self, hang: list[str]) -> None:
        self.hang = {os.path.normpath(p) for p in hang}
        self._never = threading.Event()

    def scandir(self, path: str) -> list[os.DirEntry[str]]:
        if os.path.normpath(path) in self.hang:
            print(json.dumps({"hung": path}), flush=True)
            self._never.wait()
        with os.scandir(path) as it:
            return list(it)

    def stat(self, path: str, *, follow_symlinks: bool) -> os.stat_result:
        return os.stat(path, follow_symlinks=follow_symlinks)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--library", action="append", default=[])
    parser.add_argument("--hang", action="append", default=[])
    args = parser.parse_args()

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    rt = Runtime.start(load_config(database={"url": args.database}), fs=HungMount(args.hang))
    try:
        jobs = [rt.start_scan(rt.add_library(path).id).id for path in args.library]
        print(json.dumps({"jobs": jobs, "instance": rt.instance}), flush=True)
        stop.wait()
    finally:
        rt.stop()
    print(json.dumps({"stopped": True}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
