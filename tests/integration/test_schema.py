"""The migrations and the tables agree: a database migrated to head has exactly the schema that
scanguard.store.tables declares (so 0005's columns and index are what the code reads and writes)."""

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
