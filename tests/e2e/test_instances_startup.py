"""DESIGN §8: instances started at the same moment on an empty PostgreSQL database all come up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import postgres
from tests.support.db import db_rows
from tests.support.instances import serve_settings, serving

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

INSTANCES = 3
ROUNDS = 5


@pytest.mark.postgres
def test_three_instances_started_at_once_on_an_empty_database_all_become_ready(
    pg_admin_url: str, tmp_path: Path
) -> None:
    """Five rounds, each on a fresh empty database: three `scanguard serve` started together all listen
    and answer /readyz; the schema is migrated once (one alembic_version row)."""
    for round_ in range(ROUNDS):
        url = postgres.create_database(pg_admin_url)
        try:
            named = [(f"r{round_}-i{i}", serve_settings()) for i in range(INSTANCES)]
            with serving(url, tmp_path, *named, at_once=True) as servers:
                assert all(server.call("GET", "/readyz") for server in servers)
            assert db_rows(url, "SELECT COUNT(*) FROM alembic_version") == [(1,)]
        finally:
            postgres.drop_database(pg_admin_url, url)


def test_three_instances_started_at_once_on_an_empty_sqlite_file_all_become_ready(tmp_path: Path) -> None:
    """SQLite: the migration runs in an exclusive transaction, so the three migrate one after the other
    (a guard: SQLite's write lock already serialised them before the migration lock existed)."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    named = [(f"sqlite-i{i}", serve_settings()) for i in range(INSTANCES)]
    with serving(url, tmp_path, *named, at_once=True) as servers:
        assert all(server.call("GET", "/readyz") for server in servers)
    assert db_rows(url, "SELECT COUNT(*) FROM alembic_version") == [(1,)]
