"""The migrations and the tables agree: a database migrated to head has exactly the schema that
scanguard.store.tables declares (so the columns and indexes the migrations make are what the code reads and writes),
and a new SQLite database, made from the tables at once, has the migrated schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import scanguard
from scanguard.store.engine import _script_heads, database_url, upgrade_with_alembic
from scanguard.store.tables import metadata

pytestmark = pytest.mark.timeout(60)


def _migrate_with_alembic(url: str) -> None:
    """The test's database brought to head by the migration scripts, one after the other."""
    engine = sa.create_engine(database_url(url))
    try:
        with engine.begin() as conn:
            upgrade_with_alembic(conn)
    finally:
        engine.dispose()


def test_a_database_migrated_to_head_matches_the_declared_tables(db_url: str) -> None:
    _migrate_with_alembic(db_url)
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


def test_the_vanished_index_holds_only_marked_rows_and_serves_the_finish(db_url: str) -> None:
    """Migration 0007: every row a scan writes has vanished_job_id NULL, so a full index of it was paid on
    every insert for nothing; the partial one still serves the finish's `vanished_job_id = :job`."""
    _migrate_with_alembic(db_url)
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


def _sqlite_schema(path: Path) -> dict[str, Any]:
    """Every table's columns, indexes (with their columns, uniqueness and WHERE) and foreign keys, and the
    Alembic revision: what SQLite itself reports, whatever the order or the text the DDL was written in."""
    conn = sqlite3.connect(path)
    try:
        schema: dict[str, Any] = {}
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = {r[1]: (r[2], r[3], r[4], r[5]) for r in conn.execute(f"PRAGMA table_info('{table}')")}
            indexes = {}
            for _seq, name, unique, origin, partial in conn.execute(f"PRAGMA index_list('{table}')"):
                parts = tuple(r[2] for r in conn.execute(f"PRAGMA index_info('{name}')"))
                sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
                where = " ".join(sql.split(" WHERE ", 1)[1].split()) if sql and partial else None
                key = name if origin == "c" else (origin, parts)  # constraint indexes: named by SQLite
                indexes[key] = (parts, unique, partial, where)
            keys = sorted(
                tuple(r[2:5]) + tuple(r[5:7]) for r in conn.execute(f"PRAGMA foreign_key_list('{table}')")
            )
            schema[table] = (columns, indexes, keys)
        schema["revision"] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        return schema
    finally:
        conn.close()


@pytest.fixture
def fresh_and_migrated(
    tmp_path: Path,
    runtime_factory: Callable[..., scanguard.Runtime],
    make_config: Callable[..., scanguard.Config],
) -> tuple[Path, Path]:
    """Two new SQLite databases: one started by scanguard (tables made at once), one by the scripts."""
    fresh, migrated = tmp_path / "fresh.db", tmp_path / "migrated.db"
    runtime_factory(make_config(database={"url": f"sqlite:///{fresh}"})).stop()
    _migrate_with_alembic(f"sqlite:///{migrated}")
    return fresh, migrated


def test_a_new_sqlite_database_made_from_the_tables_has_the_migrated_schema_at_head(
    fresh_and_migrated: tuple[Path, Path],
) -> None:
    fresh, migrated = fresh_and_migrated
    made, replayed = _sqlite_schema(fresh), _sqlite_schema(migrated)
    assert made.keys() == replayed.keys()
    for table in made:
        assert made[table] == replayed[table], table
    assert made["revision"] == [(next(iter(_script_heads())),)]


def test_a_new_sqlite_database_is_made_without_replaying_the_scripts(
    tmp_path: Path,
    runtime_factory: Callable[..., scanguard.Runtime],
    make_config: Callable[..., scanguard.Config],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first start on a new file costs no script replay (a first scan's tenth of a second); a database
    at an older revision is still upgraded by the scripts."""
    replays: list[str] = []
    monkeypatch.setattr(
        "scanguard.store.engine.upgrade_with_alembic", lambda conn: replays.append(conn.engine.url.database)
    )
    runtime_factory(make_config(database={"url": f"sqlite:///{tmp_path / 'new.db'}"})).stop()
    assert replays == []
    older = tmp_path / "older.db"
    conn = sqlite3.connect(older)
    conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    conn.execute("INSERT INTO alembic_version VALUES ('0006')")
    conn.commit()
    conn.close()
    with pytest.raises(scanguard.ScanguardError):  # the stand-in upgrade leaves it short of head
        runtime_factory(make_config(database={"url": f"sqlite:///{older}"}))
    assert replays == [str(older)]
