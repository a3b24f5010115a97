"""Fixtures for the admin surface: real `scanguard serve` processes and a real aiohttp client against them."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from tests.conftest import TEST_SAFEGUARDS
from tests.support.waiting import UNWATCHED, wait_for

SCANGUARD = str(Path(sys.executable).with_name("scanguard"))
TOKEN = "test-token-0123456789"
START_TIMEOUT = 30.0
_LISTENING = re.compile(r"listening on (http://[^\s{]+)")
_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer: status, headers, and the body as JSON (when it is JSON) and as text."""

    status: int
    headers: CIMultiDictProxy[str]
    text: str
    json: Any


class Api:
    """A blocking facade over one aiohttp ClientSession (on its own event loop) for readable tests."""

    def __init__(self, base_url: str, token: str | None = TOKEN) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.loop = asyncio.new_event_loop()
        self.session: aiohttp.ClientSession = self.loop.run_until_complete(self._session())

    @staticmethod
    async def _session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def _request(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Reply:
        async with self.session.request(method, self.base_url + path, headers=headers, **kwargs) as response:
            text = await response.text(errors="replace")
            body: Any = None
            if response.content_type == "application/json":
                body = await response.json()
            return Reply(response.status, response.headers, text, body)

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = _UNSET,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Reply:
        """`token=None` sends no Authorization header; a string sends that one instead of the default."""
        sent = dict(headers or {})
        use = self.token if token is _UNSET else token
        if use is not None:
            sent.setdefault("Authorization", f"Bearer {use}")
        return self.loop.run_until_complete(asyncio.wait_for(self._request(method, path, sent, **kwargs), 30))

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        return self.request("DELETE", path, **kwargs)

    def wait_job(self, job_id: int, statuses: tuple[str, ...], timeout: float = 60.0) -> dict[str, Any]:
        """Poll the job until its status is one of `statuses` (a deadline, not a sleep)."""
        return wait_until(
            lambda: (
                (j := self.get(f"/api/admin/scanner/jobs/{job_id}").json["job"])["status"] in statuses and j
            ),
            timeout,
            f"job {job_id} to become {'/'.join(statuses)}",
        )

    def all_files(self, library_id: int) -> set[str]:
        paths: set[str] = set()
        offset = 0
        while True:
            page = self.get(f"/api/admin/libraries/{library_id}/files?limit=1000&offset={offset}").json
            paths.update(f["path"] for f in page["files"])
            offset += len(page["files"])
            if not page["files"] or offset >= page["total"]:
                return paths

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.close()


wait_until = wait_for  # the one wait helper (tests/support/waiting.py), under the name these tests use


class ServerProcess:
    """A real `scanguard serve` subprocess on 127.0.0.1 and a free port, its stderr kept in a file."""

    def __init__(self, workdir: Path, database_url: str, env: dict[str, str], args: tuple[str, ...]) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.log_path = workdir / f"serve-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [SCANGUARD, "serve", "--host", "127.0.0.1", "--port", "0", "--database", database_url, *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
        self.url = self._wait_listening()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_listening(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log())
            if match:
                return match.group(1)
            if self.proc.poll() is not None:
                pytest.fail(f"scanguard serve exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"scanguard serve did not listen within {START_TIMEOUT:g}s:\n{self.log()[-4000:]}")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._log.close()


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The child's environment: ours without SCANGUARD_*, test intervals, JSON logs, the test token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGUARD_")}
    env.update(UNWATCHED)
    env.update({f"SCANGUARD_SAFEGUARDS_{k.upper()}": str(v) for k, v in TEST_SAFEGUARDS.items()})
    env.update(
        {
            "XDG_DATA_HOME": str(data_dir),
            "SCANGUARD_ADMIN_TOKEN": TOKEN,
            "SCANGUARD_LOG_FORMAT": "json",
            "SCANGUARD_LOG_LEVEL": "info",
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """start_server(database_url, env={...}, args=()) → a running `scanguard serve`; all stopped at teardown."""
    started: list[ServerProcess] = []

    def start(
        database_url: str, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> ServerProcess:
        full_env = server_env(tmp_path / "data", **(env or {}))
        server = ServerProcess(tmp_path, database_url, full_env, args)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.terminate()


@pytest.fixture
def api_for() -> Iterator[Callable[..., Api]]:
    """api_for(server_or_url, token=TOKEN) → an Api client, closed at teardown."""
    clients: list[Api] = []

    def make(target: ServerProcess | str, token: str | None = TOKEN) -> Api:
        client = Api(target.url if isinstance(target, ServerProcess) else target, token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
