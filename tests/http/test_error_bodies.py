"""A failure inside the store answers a client with its code and plain words; the SQL stays in the log."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.http.conftest import Api, ServerProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(90)


def _break_library_inserts(db_file: Path) -> None:
    """A trigger on `libraries` that names a table which is then dropped: every INSERT INTO libraries now
    fails inside SQLite ("no such table"), and SQLAlchemy's error carries the statement and parameters."""
    with sqlite3.connect(db_file) as conn:
        conn.execute("CREATE TABLE ghost (path TEXT)")
        conn.execute(
            "CREATE TRIGGER haunt BEFORE INSERT ON libraries BEGIN INSERT INTO ghost VALUES (new.path); END"
        )
        conn.execute("DROP TABLE ghost")


def test_a_500_from_the_store_names_code_step_and_rollback_but_no_sql_parameters_or_paths(
    tmp_path: Path,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
) -> None:
    db_file = tmp_path / "scanguard.db"
    server = start_server(f"sqlite:///{db_file}")
    api = api_for(server)
    _break_library_inserts(db_file)
    folder = tmp_path / "secret-media-folder"
    folder.mkdir()

    reply = api.post("/api/admin/libraries", json={"path": str(folder), "name": "hush"})

    assert reply.status == 500, reply.text
    error = reply.json["error"]
    assert error["code"] == "operation_failed"
    assert error["details"] == {"operation": "add_library", "step": "transaction", "rolled_back": True}
    assert error["message"] == (
        "add_library failed at step 'transaction' and was rolled back: SQL logic error (SQLITE_ERROR)"
    )
    for leak in (
        "INSERT",
        "libraries",
        "[SQL",
        "parameters",
        "secret-media-folder",
        "hush",
        "ghost",
        "sqlalche",
    ):
        assert leak not in reply.text, f"{leak!r} reached the client: {reply.text}"
    assert str(tmp_path) not in reply.text

    # the operator still has every word of it, in the store's log line
    line = wait_for(
        lambda: next((ln for ln in server.log().splitlines() if "store.operation_failed" in ln), None),
        10,
        "the store's log line of the failure",
    )
    assert "INSERT INTO libraries" in line, line
    assert "secret-media-folder" in line, line
    assert "no such table: main.ghost" in line, line
