"""Which driver errors mean the store cannot serve now (unavailable), rather than a fault of the operation.

The store boundary (StoreActor._translate) asks this module once per failed transaction: an unavailable
store — a full disk, an I/O error, a lost or refused connection, a server shutting down — becomes
`StoreUnavailable`, which pauses a scan (`store_unavailable`) instead of counting as a crash of it.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import exc as sa_exc

# SQLite primary result codes (the low byte of sqlite_errorcode) that say the file cannot be written or read
_SQLITE_UNAVAILABLE = frozenset(
    {
        "SQLITE_BUSY",
        "SQLITE_LOCKED",
        "SQLITE_NOMEM",
        "SQLITE_READONLY",
        "SQLITE_IOERR",
        "SQLITE_FULL",
        "SQLITE_CANTOPEN",
        "SQLITE_PROTOCOL",
    }
)

# PostgreSQL SQLSTATE classes and codes: connection exceptions, insufficient resources (disk full, out of
# memory, too many connections), operator intervention (shutdown, crash recovery, cannot connect now),
# system errors (I/O)
_PG_CLASSES = ("08", "53", "58")
_PG_CODES = frozenset({"57P01", "57P02", "57P03", "57P05"})

_DRIVER_WORDS = (
    "database or disk is full",
    "disk i/o error",
    "no space left on device",
    "unable to open database file",
    "attempt to write a readonly database",
    "database is locked",
)


def sqlite_code(exc: BaseException) -> str | None:
    """The SQLite primary result code name (SQLITE_FULL, …) of a driver error, if it carries one."""
    orig = getattr(exc, "orig", exc)
    name = getattr(orig, "sqlite_errorname", None)
    if not isinstance(name, str):
        return None
    # extended codes (SQLITE_IOERR_WRITE, …) share their primary code's prefix
    return next((code for code in _SQLITE_UNAVAILABLE if name == code or name.startswith(code + "_")), name)


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of a driver error, if it carries one."""
    orig = getattr(exc, "orig", exc)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state if isinstance(state, str) else None


def store_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot serve right now (the scan is not at fault)."""
    if isinstance(exc, OSError | ConnectionError | asyncio.TimeoutError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
        return True
    code = sqlite_code(exc)
    if code is not None:
        return code in _SQLITE_UNAVAILABLE
    state = sqlstate(exc)
    if state is not None:
        return state[:2] in _PG_CLASSES or state in _PG_CODES
    if isinstance(exc.orig, OSError | ConnectionError | asyncio.TimeoutError):
        return True
    text = str(exc.orig).lower()
    return isinstance(exc, sa_exc.OperationalError) or any(words in text for words in _DRIVER_WORDS)


def driver_words(exc: BaseException) -> str:
    """What the driver itself said, without SQLAlchemy's statement and parameters."""
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip()
