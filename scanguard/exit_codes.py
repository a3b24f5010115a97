"""The command line's exit codes, one place for `scanguard scan`, `scanguard serve` and the rest."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # bad settings or input, or a service that could not start
EXIT_USAGE = (
    2  # the command line names something it cannot mean (argparse's own code; a scope off its library)
)
EXIT_PAUSED = 3  # `scan`: the job paused itself (e.g. its root vanished); run again to resume
EXIT_INTERRUPTED = 130  # `scan`: Ctrl-C or SIGTERM paused it; run again to resume
