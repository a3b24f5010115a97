"""Structured logging: one event per line, JSON when stderr is not a terminal, a stable `event` name."""

from __future__ import annotations

import logging
import sys

import structlog

from scanguard.config import LogConfig

_configured = False


def configure_logging(cfg: LogConfig, *, force: bool = False) -> None:
    """Set up structlog once per process (host code may have done its own: then pass force=False)."""
    global _configured
    if _configured and not force:
        return
    _configured = True
    level = getattr(logging, cfg.level.upper())
    use_json = cfg.format == "json" or (cfg.format == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # one write per line (print writes the line and its newline apart): another thread's line never
        # lands inside it
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def say(text: str) -> None:
    """A line for the person at the terminal, on stderr beside the log, written whole: a log line from
    another thread lands before or after it, never inside it."""
    sys.stderr.write(f"{text}\n")
