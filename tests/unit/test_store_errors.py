"""The store boundary: PostgreSQL's own unavailability is StoreUnavailable (503), never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc

import scanguard
from scanguard.errors import OperationFailed, StoreUnavailable
from scanguard.store.database import translate


class _DriverError(Exception):
    """What a PostgreSQL driver raises (psycopg, asyncpg): an error carrying the server's SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _translated(sqlstate: str, message: str) -> scanguard.ScanguardError:
    error = sa_exc.DBAPIError("SELECT 1", None, _DriverError(message, sqlstate))
    return translate("get_job", "read", error)


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("57P03", "the database system is not yet accepting connections"),
        ("57P01", "terminating connection due to administrator command"),
        ("57P02", "terminating connection due to crash of another server process"),
        ("08006", "connection failure"),
        ("53300", "sorry, too many clients already"),
    ],
)
def test_a_server_starting_stopping_or_full_is_store_unavailable(sqlstate: str, message: str) -> None:
    error = _translated(sqlstate, message)
    assert isinstance(error, StoreUnavailable)
    assert error.status == 503


def test_a_lock_timeout_left_after_every_retry_is_store_unavailable_saying_busy() -> None:
    error = _translated("55P03", "canceling statement due to lock timeout")
    assert isinstance(error, StoreUnavailable)
    assert "busy" in error.message


def test_a_constraint_or_syntax_error_stays_operation_failed() -> None:
    assert isinstance(_translated("42601", "syntax error"), OperationFailed)
