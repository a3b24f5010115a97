"""PostgreSQL for tests: an admin URL from the environment, or a throwaway server started from local binaries."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

ENV_VAR = "SCANGUARD_TEST_POSTGRES_URL"


def find_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl: PATH first, then /usr/lib/postgresql/*/bin (newest)."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if os.access(f"{bindir}/initdb", os.X_OK) and os.access(f"{bindir}/pg_ctl", os.X_OK):
            return Path(bindir)
    return None


def _version_key(bindir: str) -> float:
    try:
        return float(Path(bindir).parent.name)
    except ValueError:
        return 0.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ThrowawayServer:
    """One PostgreSQL cluster in a temp dir on a free 127.0.0.1 port; trust auth, no fsync, commits durable
    across a crash of the server."""

    bindir: Path
    root: Path
    port: int
    run_as: str | None
    options: str = ""

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls, bindir: Path) -> ThrowawayServer:
        root = Path(tempfile.mkdtemp(prefix="scanguard-test-pg-"))
        run_as = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            run_as = "postgres"
            entry = pwd.getpwnam(run_as)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server = cls(bindir, root, free_port(), run_as)
        try:
            server._run(
                "initdb",
                "-D",
                str(root / "data"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-locale",
            )
            # fsync and full-page writes off: a crash of the server (an immediate stop, as the faults
            # make) leaves what it wrote in the OS's cache, so nothing committed is lost. Commits stay
            # synchronous: with synchronous_commit=off the server acknowledges a commit before writing its
            # WAL, and an immediate restart forgot events whose writers had already published them (a soak
            # "missed" an event that no longer existed)
            server.options = (
                f"-p {server.port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off "
                "-c full_page_writes=off -c max_connections=200"
            )
            server.boot()
        except BaseException:
            server.stop()
            raise
        return server

    def boot(self) -> None:
        """Start the server on its data directory (again, after `halt`), waiting until it accepts."""
        self._run(
            "pg_ctl",
            "-D",
            str(self.root / "data"),
            "-l",
            str(self.root / "server.log"),
            "-o",
            self.options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def halt(self) -> None:
        """Stop the server at once (`-m immediate`: connections cut, as in a crash), keeping its data."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "-t", "30", "stop")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.run_as is not None:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, cwd=self.root)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr}{done.stdout}\n{tail}"
            )

    def restart(self, mode: str = "fast") -> None:
        """Restart the server (every session is cut), with the options it was started with."""
        data, log = str(self.root / "data"), str(self.root / "server.log")
        self._run("pg_ctl", "-D", data, "-l", log, "-m", mode, "-w", "-t", "60", "restart")

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(
                    "pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "-t", "30", "stop"
                )
        shutil.rmtree(self.root, ignore_errors=True)


def database_url(admin_url: str, name: str) -> str:
    """The admin URL with its database replaced."""
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://").replace("postgres://", "postgresql://")


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(admin_url), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(admin_url: str) -> str:
    """Create a uniquely named empty database and return its URL."""
    name = f"scanguard_test_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    return database_url(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def reachable(admin_url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        asyncio.run(_admin(admin_url, "SELECT 1"))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
