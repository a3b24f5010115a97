"""The migrations and the tables agree: a database migrated to head has exactly the schema that
scanguard.store.tables declares (so the columns and indexes the migrations make are what the code reads and writes)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import scanguard
from scanguard.store.engine import database_url
from scanguard.store.tables import metadata

pytestmark = pytest.mark.timeout(60)


def test_a_database_migrated_to_head_matches_the_declared_tables(
    db_url: str, runtime_factory: Callable[..., scanguard.Runtime]
) -> None:
    runtime_factory().stop()  # migrates the test's database to head
    engine = sa.create_engine(database_url(db_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert diff == []


def _index_definition(conn: sa.Connection, name: str) -> str:
    if conn.dialect.name == "postgresql":
        return str(
            conn.exec_driver_sql("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (name,)).scalar()
        )
    return str(conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).scalar())


def test_the_vanished_index_holds_only_marked_rows_and_serves_the_finish(
    db_url: str, runtime_factory: Callable[..., scanguard.Runtime]
) -> None:
    """Migration 0007: every row a scan writes has vanished_job_id NULL, so a full index of it was paid on
    every insert for nothing; the partial one still serves the finish's `vanished_job_id = :job`."""
    runtime_factory().stop()
    engine = sa.create_engine(database_url(db_url))
    try:
        with engine.connect() as conn:
            definition = _index_definition(conn, "ix_media_files_vanished_job_id")
            assert "vanished_job_id IS NOT NULL" in definition.replace("(", "").replace(")", "")
            if conn.dialect.name == "sqlite":
                plan = conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN UPDATE media_files SET missing_since = '2024-01-01' "
                    "WHERE vanished_job_id = 7 AND missing_since IS NULL"
                ).all()
                assert any("ix_media_files_vanished_job_id" in str(row[-1]) for row in plan), plan
    finally:
        engine.dispose()
