"""How a driver error is classified and described, by the driver's own codes, never by its English text.

The store boundary (store/database.py `translate`) asks this module once per failed transaction:
- busy: a wait for another writer's lock that gave up (SQLITE_BUSY, SQLITE_LOCKED and their extended
  codes; PostgreSQL's serialization failure, deadlock, lock not available): retried with backoff;
- unavailable: the store cannot serve now — a full disk, an I/O error, a lost or refused connection, a
  server shutting down — which becomes `StoreUnavailable` and pauses a scan (`store_unavailable`) instead of
  counting as a crash of it;
- described: what a client may be told — the code and its fixed meaning, never the driver's text (which
  may hold the statement, its parameters or the server's paths: that goes to the log only).
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

# SQLite primary result codes of a lock wait that gave up (SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED_SHAREDCACHE, …
# share their prefix)
_SQLITE_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})
# PostgreSQL: serialization_failure, deadlock_detected, lock_not_available (lock_timeout, NOWAIT)
_PG_BUSY = frozenset({"40001", "40P01", "55P03"})

# what each code means, in scanguard's own fixed words (SQLite's sqlite3_errstr, PostgreSQL's class names)
_SQLITE_MEANING = {
    "SQLITE_ERROR": "SQL logic error",
    "SQLITE_BUSY": "database is locked",
    "SQLITE_LOCKED": "database table is locked",
    "SQLITE_NOMEM": "out of memory",
    "SQLITE_READONLY": "attempt to write a readonly database",
    "SQLITE_IOERR": "disk I/O error",
    "SQLITE_FULL": "database or disk is full",
    "SQLITE_CANTOPEN": "unable to open database file",
    "SQLITE_PROTOCOL": "locking protocol",
    "SQLITE_CONSTRAINT": "constraint failed",
    "SQLITE_CORRUPT": "database disk image is malformed",
}
_PG_MEANING = {
    "08": "connection exception",
    "22": "data exception",
    "23": "integrity constraint violation",
    "40": "transaction rollback",
    "42": "syntax error or access rule violation",
    "53": "insufficient resources",
    "55": "object not in prerequisite state",
    "57": "operator intervention",
    "58": "system error",
}

# PostgreSQL SQLSTATE classes and codes: connection exceptions, insufficient resources (disk full, out of
# memory, too many connections), operator intervention (shutdown, crash recovery, cannot connect now),
# system errors (I/O)
_PG_CLASSES = ("08", "53", "58")
_PG_CODES = frozenset({"57P01", "57P02", "57P03", "57P05"})


def sqlite_code(exc: BaseException) -> str | None:
    """The SQLite primary result code name (SQLITE_FULL, …) of a driver error, if it carries one."""
    orig = getattr(exc, "orig", exc)
    name = getattr(orig, "sqlite_errorname", None)
    if not isinstance(name, str):
        return None
    # extended codes (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT, …) share their primary code's prefix
    known = _SQLITE_MEANING.keys()
    return next((code for code in known if name == code or name.startswith(code + "_")), name)


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of a driver error, if it carries one."""
    orig = getattr(exc, "orig", exc)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state if isinstance(state, str) else None


def busy(exc: BaseException) -> bool:
    """A wait for another writer's lock that gave up: worth retrying with backoff."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    code = sqlite_code(exc)
    if code is not None:
        return code in _SQLITE_BUSY
    return sqlstate(exc) in _PG_BUSY


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
    # a driver error without a code (a broken connection the driver noticed itself)
    return isinstance(exc, sa_exc.OperationalError)


def described(exc: BaseException) -> str:
    """What a client may be told about a driver error: its code and what the code means, in fixed words.

    Never the driver's own text, which can carry the statement, its parameters and the server's paths;
    the store logs that (`store.operation_failed`)."""
    code = sqlite_code(exc)
    if code is not None:
        meaning = _SQLITE_MEANING.get(code)
        return f"{meaning} ({code})" if meaning else code
    state = sqlstate(exc)
    if state is not None:
        meaning = _PG_MEANING.get(state[:2])
        return f"SQLSTATE {state} ({meaning})" if meaning else f"SQLSTATE {state}"
    orig = getattr(exc, "orig", None)
    return type(orig if orig is not None else exc).__name__
