"""`scanguard serve`: the Runtime and the admin app in one process, until SIGINT/SIGTERM sets the stop event.

The admin token comes from SCANGUARD_ADMIN_TOKEN, else `http.admin_token` in the config. When neither is
set, one is generated (`secrets.token_urlsafe(32)`), printed once to stderr, and kept with mode 0600 in
`default_data_dir()/admin_token` (`$XDG_DATA_HOME/scanguard/admin_token`, by default
`~/.local/share/scanguard/admin_token`) — one place whatever the database — and reused on every restart.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import threading
from pathlib import Path

import structlog
from aiohttp import web

from scanguard.config import Config, default_data_dir
from scanguard.errors import ConfigError, ScanguardError
from scanguard.exit_codes import EXIT_ERROR, EXIT_OK
from scanguard.http.app import create_app

log = structlog.get_logger("scanguard.http.serve")
STOP_POLL = 0.1
SHUTDOWN_GRACE = 5.0


def _say(text: str) -> None:
    """One line for the operator on stderr, in one write: a log line of another thread never splits it."""
    sys.stderr.write(f"scanguard: {text}\n")
    sys.stderr.flush()


def token_file() -> Path:
    """Where a generated admin token is kept."""
    return default_data_dir() / "admin_token"


def resolve_token(cfg: Config) -> str:
    """The configured token, or the kept generated one, or a new one (printed once, then kept)."""
    if cfg.http.admin_token:
        return cfg.http.admin_token
    path = token_file()
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        kept = ""
    except OSError as exc:
        raise ConfigError(f"cannot read the admin token file {path}: {exc}") from exc
    if kept:
        _say(f"using the admin token kept in {path}")
        return kept
    token = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
    except FileExistsError:
        return resolve_token(cfg)  # another process generated it first: use theirs
    except OSError as exc:
        raise ConfigError(f"cannot keep the admin token in {path}: {exc}") from exc
    _say(f"generated admin token (kept in {path}): {token}")
    return token


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _run(cfg: Config, stop_event: threading.Event) -> int:
    app = create_app(cfg)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE)
    await runner.setup()  # the app's cleanup_ctx starts the Runtime here
    try:
        site = web.TCPSite(runner, cfg.http.host, cfg.http.port, reuse_address=True)
        await site.start()
        for address in runner.addresses:
            host, port = address[0], address[1]
            _say(f"listening on {_url(host, port)}")
        log.info("http.serving", addresses=[list(a[:2]) for a in runner.addresses])
        while not stop_event.is_set():
            await asyncio.sleep(STOP_POLL)
        log.info("http.stopping")
    finally:
        await runner.cleanup()  # the cleanup_ctx stops the Runtime: running scans pause with "shutdown"
    return EXIT_OK


def serve(cfg: Config, stop_event: threading.Event) -> int:
    """Serve until `stop_event` is set (SIGINT/SIGTERM); 0 after a clean shutdown, 1 if it could not start."""
    try:
        token = resolve_token(cfg)
        return asyncio.run(_run(cfg.replace(http={"admin_token": token}), stop_event))
    except ScanguardError as exc:
        _say(f"error: {exc.message}")
        return EXIT_ERROR
    except OSError as exc:  # the port is taken, the address is not ours
        _say(f"error: cannot listen on {cfg.http.host}:{cfg.http.port}: {exc}")
        return EXIT_ERROR
