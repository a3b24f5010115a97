"""Real `scanguard serve` processes for multi-instance tests: start, call, signal, stop — each with a deadline."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.waiting import UNWATCHED, wait_for

TOKEN = "test-token-for-instances"
_LISTENING = re.compile(r"listening on (http://[^\s{]+)")


def scanguard_command() -> list[str]:
    script = Path(sys.executable).with_name("scanguard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "scanguard.cli"]


def instance_env(tmp_path: Path, settings: dict[str, str]) -> dict[str, str]:
    """This environment minus the developer's SCANGUARD_* settings, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGUARD_")}
    env.update(UNWATCHED)
    env.update(
        SCANGUARD_ADMIN_TOKEN=TOKEN,
        SCANGUARD_LOG_LEVEL="info",
        SCANGUARD_LOG_FORMAT="json",
        XDG_DATA_HOME=str(tmp_path / "xdg"),
    )
    env.update(settings)
    return env


class ApiError(Exception):
    """An HTTP error answer from an instance."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class ServeProcess:
    """One `scanguard serve --port 0` child, its log file, and its base URL once it listens."""

    name: str
    database: str
    log_path: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    base: str = ""
    restarts: int = field(default=0)
    new_session: bool = False  # each run leads a process group of its own (the soak kills the groups)
    _offset: int = 0

    @classmethod
    def spawn(
        cls, name: str, database: str, tmp_path: Path, settings: dict[str, str], *, new_session: bool = False
    ) -> ServeProcess:
        server = cls(
            name,
            database,
            tmp_path / f"{name}.log",
            instance_env(tmp_path, settings),
            new_session=new_session,
        )
        server.start()
        return server

    def start(self) -> None:
        self.base = ""
        mode = "a" if self.log_path.exists() else "w"
        with self.log_path.open(mode) as log:
            self.proc = subprocess.Popen(
                [*scanguard_command(), "serve", "--port", "0", "--database", self.database],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.new_session,
            )
        self._offset = self.log_path.stat().st_size if mode == "a" else 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, timeout: float = 60) -> str:
        """The base URL once this run prints it; fails (with the log) if the process dies first."""

        def ready() -> re.Match[str] | bool | None:
            if not self.alive():
                return True
            return _LISTENING.search(self.log_text()[self._offset :])

        found = wait_for(ready, timeout, f"{self.name} to listen", interval=0.05)
        assert self.alive(), f"{self.name} exited {self.returncode()}:\n{self.log_text()[-4000:]}"
        assert isinstance(found, re.Match)
        self.base = found.group(1)
        return self.base

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def scan_folder(self, root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """Add `root` as a library through this instance and start its scan: (library, job)."""
        library = self.call("POST", "/api/admin/libraries", {"path": str(root)})["library"]
        job = self.call("POST", f"/api/admin/scanner/safe/start/{library['id']}")["job"]
        return library, job

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 15
    ) -> dict[str, Any]:
        """One admin API call; an error answer raises ApiError with its status and JSON body."""
        request = urllib.request.Request(  # noqa: S310 - our own local server over http
            self.base + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload = dict(json.loads(raw))
            except ValueError:
                payload = {"raw": raw.decode(errors="replace")}
            raise ApiError(exc.code, payload) from None

    def signal(self, signum: signal.Signals) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signum)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Whatever state it is in (frozen included): SIGCONT, then SIGKILL, and reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=30)


def serve_settings(**overrides: str) -> dict[str, str]:
    """SCANGUARD_* variables with the safeguard intervals shrunk for multi-instance tests."""
    settings = {
        "SCANGUARD_SAFEGUARDS_WATCHDOG_INTERVAL": "0.5",
        "SCANGUARD_SAFEGUARDS_STATE_VALIDATION_INTERVAL": "1",
        "SCANGUARD_SAFEGUARDS_HEALTH_CHECK_INTERVAL": "1",
        "SCANGUARD_SAFEGUARDS_CLEANUP_INTERVAL": "0",
        "SCANGUARD_SAFEGUARDS_STALL_THRESHOLD": "60",
        "SCANGUARD_SAFEGUARDS_ORPHANED_JOB_THRESHOLD": "2",
        "SCANGUARD_SAFEGUARDS_LEASE_TTL": "3",
        "SCANGUARD_SAFEGUARDS_OPERATION_TIMEOUT": "10",
        "SCANGUARD_SAFEGUARDS_SHUTDOWN_TIMEOUT": "10",
        "SCANGUARD_SAFEGUARDS_FORCE_KILL_TIMEOUT": "2",
        "SCANGUARD_SAFEGUARDS_AUTO_RESUME_ORPHANS": "true",
    }
    settings.update(overrides)
    return settings


@contextlib.contextmanager
def serving(
    database: str,
    tmp_path: Path,
    *named: tuple[str, dict[str, str]],
    at_once: bool = False,
    timeout: float = 60,
) -> Iterator[list[ServeProcess]]:
    """Instances `(name, settings)` on one database, each listening before the next starts (or, `at_once`,
    all started before any is waited for); every one stopped however the block ends."""
    with contextlib.ExitStack() as stack:
        servers: list[ServeProcess] = []
        for name, settings in named:
            server = ServeProcess.spawn(name, database, tmp_path, settings)
            stack.callback(server.stop)
            servers.append(server)
            if not at_once:
                server.wait_listening(timeout)
        if at_once:
            for server in servers:
                server.wait_listening(timeout)
        yield servers
