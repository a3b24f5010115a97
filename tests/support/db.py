"""Direct database access for assertions: sqlite3 for SQLite files, asyncpg for PostgreSQL. Tests only."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

TABLES = ("libraries", "scan_jobs", "media_files", "library_leases", "events")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg(url: str, statements: Sequence[str]) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(_pg_dsn(url), timeout=10)
    try:
        rows: list[tuple[Any, ...]] = []
        for sql in statements:
            rows = [tuple(r) for r in await conn.fetch(sql)]
        return rows
    finally:
        await conn.close()


def db_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one query, straight from the database (not through scanguard)."""
    if is_sqlite(url):
        conn = sqlite3.connect(make_url(url).database or "", timeout=10)
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()
    return asyncio.run(_pg(url, [sql]))


def db_value(url: str, sql: str) -> Any:
    """The single value of a one-row, one-column query."""
    rows = db_rows(url, sql)
    assert len(rows) == 1, rows
    assert len(rows[0]) == 1, rows
    return rows[0][0]


def db_exec(url: str, *statements: str) -> None:
    """Run statements (DDL for test triggers, say) in autocommit."""
    if is_sqlite(url):
        conn = sqlite3.connect(make_url(url).database or "", timeout=10, isolation_level=None)
        try:
            for sql in statements:
                conn.execute(sql)
        finally:
            conn.close()
        return
    asyncio.run(_pg(url, statements))


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every scanguard table, in a stable order: to prove an operation changed nothing."""
    queries = [f"SELECT * FROM {table} ORDER BY 1" for table in TABLES]
    if is_sqlite(url):
        conn = sqlite3.connect(make_url(url).database or "", timeout=10)
        try:
            return {
                t: [tuple(r) for r in conn.execute(q).fetchall()]
                for t, q in zip(TABLES, queries, strict=True)
            }
        finally:
            conn.close()
    return asyncio.run(_pg_many(url, queries))


async def _pg_many(url: str, queries: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(_pg_dsn(url), timeout=10)
    try:
        return {t: [tuple(r) for r in await conn.fetch(q)] for t, q in zip(TABLES, queries, strict=True)}
    finally:
        await conn.close()


def install_write_counter(url: str) -> None:
    """Count every INSERT and UPDATE on media_files in a side table, by triggers the test owns."""
    if is_sqlite(url):
        db_exec(
            url,
            "CREATE TABLE test_media_writes (n INTEGER NOT NULL)",
            "INSERT INTO test_media_writes VALUES (0)",
            "CREATE TRIGGER test_mf_ins AFTER INSERT ON media_files BEGIN "
            "UPDATE test_media_writes SET n = n + 1; END",
            "CREATE TRIGGER test_mf_upd AFTER UPDATE ON media_files BEGIN "
            "UPDATE test_media_writes SET n = n + 1; END",
        )
        return
    db_exec(
        url,
        "CREATE TABLE test_media_writes (n INTEGER NOT NULL)",
        "INSERT INTO test_media_writes VALUES (0)",
        "CREATE FUNCTION test_count_media_write() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN UPDATE test_media_writes SET n = n + 1; RETURN NULL; END $$",
        "CREATE TRIGGER test_mf_writes AFTER INSERT OR UPDATE ON media_files "
        "FOR EACH ROW EXECUTE FUNCTION test_count_media_write()",
    )


def media_writes(url: str) -> int:
    return int(db_value(url, "SELECT n FROM test_media_writes"))


def present_paths(url: str, library_id: int) -> set[str]:
    """The library's indexed paths that are not marked missing."""
    where = f"library_id = {library_id} AND missing_since IS NULL"
    return {r[0] for r in db_rows(url, f"SELECT path FROM media_files WHERE {where}")}


def missing_paths(url: str, library_id: int) -> set[str]:
    """The library's indexed paths marked missing."""
    where = f"library_id = {library_id} AND missing_since IS NOT NULL"
    return {r[0] for r in db_rows(url, f"SELECT path FROM media_files WHERE {where}")}
