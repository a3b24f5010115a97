"""A service of one worker pool running video_probe, in a process of its own, for tests of external tools.

Workers are forked by multiprocessing's forkserver, which keeps the environment it started with; a test
that puts a fake tool on PATH therefore runs the pool here, in a new process with its own forkserver:
`python -m tests.support.probing FILE_TIMEOUT VIDEO` prints the file's outcome as a JSON line after
OUTCOME (the service's log shares stdout; `read_outcome` finds it), then holds the pool open until its
stdin closes, so the test can look at the processes meanwhile.
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

import scanguard
from scanguard.processing.context import FileContext
from scanguard.processing.pool import FilePool

OUTCOME = "outcome: "


def read_outcome(stdout: IO[str]) -> dict[str, Any]:
    """The outcome the service printed (its log lines before it skipped); {} if it ended without one."""
    for line in stdout:
        if line.startswith(OUTCOME):
            found: dict[str, Any] = json.loads(line.removeprefix(OUTCOME))
            return found
    return {}


def main(file_timeout: str, video: str) -> None:
    cfg = scanguard.load_config(
        environ={}, scan={"processors": ["video_probe"], "workers": 1, "file_timeout": float(file_timeout)}
    )
    pool = FilePool(cfg.scan.processors, cfg.scan)
    try:
        root, name = os.path.split(video)
        ctx = FileContext(1, 1, root, name, video, os.path.getsize(video), 1.0, "video")
        (outcome,) = pool.submit([ctx]).outcomes(timeout=60)
        print(
            OUTCOME + json.dumps({"meta": outcome.meta, "error": outcome.error, "reason": outcome.reason}),
            flush=True,
        )
        sys.stdin.read()
    finally:
        pool.close(5)


if __name__ == "__main__":
    main(*sys.argv[1:])
