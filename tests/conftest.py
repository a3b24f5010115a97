"""Shared fixtures: databases (SQLite file, PostgreSQL), a test config, runtimes that always stop, media trees."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import scanguard
from tests.support import postgres
from tests.support.db import db_rows
from tests.support.trees import build_tree, expected_media

# intervals shrunk so that safeguards act within a test's patience; tests never sleep for them
TEST_SAFEGUARDS: dict[str, Any] = {
    "retry_interval": 0.05,
    "watchdog_interval": 0.2,
    "health_check_interval": 0.5,
    "state_validation_interval": 0.5,
    "cleanup_interval": 0.5,
    "stall_threshold": 1.0,
    "orphaned_job_threshold": 2.0,
    "lease_ttl": 5,
    "operation_timeout": 10,
    "shutdown_timeout": 10,
    "force_kill_timeout": 2,
}


# ---- databases --------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A real SQLite file under the test's tmp_path."""
    return f"sqlite:///{tmp_path / 'scanguard.db'}"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """An admin URL of a PostgreSQL server: $SCANGUARD_TEST_POSTGRES_URL, else a throwaway server."""
    url = os.environ.get(postgres.ENV_VAR)
    if url:
        problem = postgres.reachable(url)
        if problem:
            pytest.fail(f"{postgres.ENV_VAR}={url} is not reachable: {problem}")
        yield url
        return
    bindir = postgres.find_binaries()
    if bindir is None:
        pytest.skip(
            f"no PostgreSQL: set {postgres.ENV_VAR} or install initdb/pg_ctl "
            "(PATH or /usr/lib/postgresql/*/bin)"
        )
    server = postgres.ThrowawayServer.start(bindir)
    try:
        yield server.admin_url
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server, dropped after the test."""
    url = postgres.create_database(pg_admin_url)
    try:
        yield url
    finally:
        postgres.drop_database(pg_admin_url, url)


@pytest.fixture
def throwaway_pg() -> Iterator[postgres.ThrowawayServer]:
    """A PostgreSQL server of this test's own (never the shared one), which it may stop, kill or restart."""
    bindir = postgres.find_binaries()
    if bindir is None:
        pytest.skip("needs the PostgreSQL binaries (initdb, pg_ctl) for a throwaway server")
    server = postgres.ThrowawayServer.start(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The test's database URL, once per backend: a SQLite file, then a PostgreSQL database."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


def _test_url(request: pytest.FixtureRequest) -> str:
    for name in ("db_url", "pg_url"):
        if name in request.fixturenames:
            return str(request.getfixturevalue(name))
    return str(request.getfixturevalue("sqlite_url"))


# ---- configuration and runtimes ---------------------------------------------------------------


@pytest.fixture
def make_config(request: pytest.FixtureRequest) -> Callable[..., scanguard.Config]:
    """make_config(scan={"batch_size": 50}) → a Config with test intervals on the test's database.

    The database is db_url when the test asks for it (so it runs on both backends), else pg_url when
    asked for, else a SQLite file. The developer's SCANGUARD_* variables never leak in.
    """

    def make(**sections: dict[str, Any]) -> scanguard.Config:
        merged: dict[str, dict[str, Any]] = {
            "safeguards": dict(TEST_SAFEGUARDS),
            "log": {"format": "json", "level": "warning"},
            "watch": {"default": False},  # a watching test turns it on (or passes watch=True)
        }
        if "url" not in sections.get("database", {}):
            merged["database"] = {"url": _test_url(request)}
        for name, values in sections.items():
            merged.setdefault(name, {}).update(values)
        return scanguard.load_config(environ={}, **merged)

    return make


@pytest.fixture
def runtime_factory(
    make_config: Callable[..., scanguard.Config],
) -> Iterator[Callable[..., scanguard.Runtime]]:
    """runtime_factory(config=None, **kwargs) → a started Runtime; every one is stopped at teardown."""
    started: list[scanguard.Runtime] = []

    def start(config: scanguard.Config | None = None, **kwargs: Any) -> scanguard.Runtime:
        rt = scanguard.Runtime.start(config or make_config(), **kwargs)
        started.append(rt)
        return rt

    yield start
    for rt in reversed(started):
        rt.stop()


# ---- media trees ------------------------------------------------------------------------------


class MediaTree:
    """The `media_tree` fixture: build_tree and expected_media from tests/support/trees.py."""

    build_tree = staticmethod(build_tree)
    expected_media = staticmethod(expected_media)


@pytest.fixture
def media_tree() -> type[MediaTree]:
    """media_tree.build_tree(root, n_media, n_other, hidden=True, nested=True) and
    media_tree.expected_media(root, rule) — the expected index by an independent os.walk."""
    return MediaTree


@pytest.fixture
def db_query() -> Callable[[str, str], list[tuple[Any, ...]]]:
    """db_query(url, sql) → rows, read straight from the database."""
    return db_rows
