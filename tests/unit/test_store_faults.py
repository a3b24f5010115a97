"""Issue 11, item 1: which driver errors mean "the store cannot serve now" (pause the scan) and which do not."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from scanguard.store.faults import described, store_unavailable


class PgError(Exception):
    """Stands in for SQLAlchemy's asyncpg adapter error: it carries the server's SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _sqlite(message: str, name: str) -> sqlite3.Error:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorname = name  # type: ignore[attr-defined]
    return error


def _wrap(orig: Exception, kind: type[sa_exc.DBAPIError] = sa_exc.DBAPIError) -> sa_exc.DBAPIError:
    return kind("INSERT INTO media_files ...", {}, orig)


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (_wrap(_sqlite("database or disk is full", "SQLITE_FULL"), sa_exc.OperationalError), True),
        (_wrap(_sqlite("disk I/O error", "SQLITE_IOERR_WRITE"), sa_exc.OperationalError), True),
        (_wrap(_sqlite("unable to open database file", "SQLITE_CANTOPEN"), sa_exc.OperationalError), True),
        (_wrap(_sqlite("no such table: media_files", "SQLITE_ERROR"), sa_exc.OperationalError), False),
        (_wrap(PgError("could not extend file: No space left on device", "53100")), True),
        (_wrap(PgError("terminating connection due to administrator command", "57P01")), True),
        (_wrap(PgError("connection does not exist", "08003")), True),
        (_wrap(PgError("duplicate key value violates unique constraint", "23505")), False),
        (_wrap(PgError("division by zero", "22012")), False),
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (ValueError("a bug"), False),
    ],
)
def test_store_errors_are_classified_by_the_drivers_own_codes(error: Exception, unavailable: bool) -> None:
    assert store_unavailable(error) is unavailable


def test_a_driver_error_is_described_by_its_code_in_fixed_words_never_by_its_text() -> None:
    full = _wrap(
        _sqlite("database or disk is full: /srv/db/scanguard.db", "SQLITE_FULL_X"), sa_exc.OperationalError
    )
    assert described(full) == "database or disk is full (SQLITE_FULL)"
    pg = _wrap(PgError("Key (path)=(/srv/media/secret.mkv) already exists.", "23505"))
    assert described(pg) == "SQLSTATE 23505 (integrity constraint violation)"
