"""A scan's new rows reach SQLite many to a statement: the driver steps once per 76 rows, not per row."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import scanguard
from scanguard.store.batches import ROWS_PER_STATEMENT
from tests.support.db import db_rows
from tests.support.trees import build_tree, expected_media

pytestmark = pytest.mark.timeout(60)

_GROUP = re.compile(r"\((?:\?, )*\?\)")


@pytest.fixture
def media_upserts() -> Iterator[list[int]]:
    """The rows carried by each execution of an upsert into media_files, on every engine of the test."""
    rows: list[int] = []
    lock = threading.Lock()

    def seen(
        _conn: sa.Connection, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if not statement.startswith("INSERT INTO media_files"):
            return
        per_execution = len(_GROUP.findall(statement.split(" ON CONFLICT ", maxsplit=1)[0]))
        with lock:
            rows.extend([per_execution] * (len(parameters) if many else 1))

    sa.event.listen(sa.Engine, "before_cursor_execute", seen)
    try:
        yield rows
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", seen)


def test_a_full_scan_writes_its_new_rows_in_multi_row_statements_and_indexes_every_file(
    sqlite_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    media_upserts: list[int],
) -> None:
    root = tmp_path / "lib"
    n_media = 3 * ROWS_PER_STATEMENT + 11  # full statements and a remainder, in one batch
    build_tree(root, n_media, 5)
    rt = runtime_factory(make_config(database={"url": sqlite_url}, scan={"batch_size": 1000}))
    library = rt.add_library(root)
    job = rt.wait_for_job(rt.start_scan(library.id).id, ("completed", "failed", "paused"), timeout=30)

    assert job.status == "completed", job
    expected = expected_media(root)
    indexed = db_rows(
        sqlite_url, f"SELECT path, size, missing_since FROM media_files WHERE library_id = {library.id}"
    )
    assert {path for path, _, _ in indexed} == expected
    assert all(size == (root / path).stat().st_size and missing is None for path, size, missing in indexed)
    assert sum(media_upserts) == len(expected), "every new row written once"
    assert max(media_upserts) == ROWS_PER_STATEMENT, "the rows go many to a statement"
    assert len(media_upserts) < len(expected) / 10, media_upserts
