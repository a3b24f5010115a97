"""The engine: URL mapping to async drivers, SQLite pragmas and BEGIN IMMEDIATE, and Alembic migrations."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from scanguard.config import DatabaseConfig, SafeguardConfig
from scanguard.errors import ConfigError
from scanguard.store import jsontext
from scanguard.store.tables import metadata

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")
# the advisory lock every instance takes before migrating a PostgreSQL database (any fixed 64-bit key)
# how long a migrating session may sit idle inside its transaction before the server ends it (ms)
MIGRATION_IDLE_MS = 60_000
MIGRATION_LOCK_KEY = 0x5CA9_0A2D_0001
# SQLite connections kept open by the pool: the writer, the readers of the event loop, the actors' reads
SQLITE_POOL = 64


def database_url(url: str, *, asynchronous: bool = False) -> sa.URL:
    """`sqlite:///x.db` → the standard sqlite3 driver, `postgresql://…` → psycopg (asyncpg when
    `asynchronous`); a SQLite file's folder is made. Anything else is a ConfigError."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"database.url is not a valid URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return parsed.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg" if asynchronous else "postgresql+psycopg")
    raise ConfigError(f"database.url must be sqlite or postgresql, got {backend}")


@dataclass(frozen=True, slots=True)
class SessionTimeouts:
    """The bounds every PostgreSQL session carries, derived from the safeguard settings (seconds)."""

    # a lock wait gives up after this and the transaction is retried with backoff (a quarter of the
    # smaller of operation_timeout and lease_ttl), so no actor hangs behind a frozen process's lock
    lock: float
    # no statement outlives an operation's budget (operation_timeout)
    statement: float
    # the server ends a session left idle inside a transaction for half a lease (a process stopped
    # mid-transaction), releasing its locks before another instance's takeover
    idle_in_transaction: float

    @classmethod
    def from_config(cls, sg: SafeguardConfig) -> SessionTimeouts:
        return cls(
            lock=min(sg.operation_timeout, sg.lease_ttl) / 4,
            statement=sg.operation_timeout,
            idle_in_transaction=sg.lease_ttl / 2,
        )

    def server_settings(self) -> dict[str, str]:
        """Each bound in whole milliseconds (at least 1; 0 would disable it), by setting name."""
        return {
            "lock_timeout": _ms(self.lock),
            "statement_timeout": _ms(self.statement),
            "idle_in_transaction_session_timeout": _ms(self.idle_in_transaction),
        }

    def connect_args(self, *, asynchronous: bool) -> dict[str, Any]:
        """The driver's way of setting them on every new session: asyncpg's `server_settings`, or
        libpq's `options` for psycopg."""
        settings = self.server_settings()
        if asynchronous:
            return {"server_settings": settings}
        return {"options": " ".join(f"-c {name}={value}" for name, value in settings.items())}


def _ms(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = database_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def driver_dsn(url: str) -> str:
    """The plain `postgresql://…` DSN of a database URL, for a raw driver connection (the listener)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def is_postgresql(url: str) -> bool:
    return database_url(url).get_backend_name() == "postgresql"


def create_engine(cfg: DatabaseConfig, timeouts: SessionTimeouts | None = None) -> sa.Engine:
    """The synchronous engine of the store's writer and of reads on threads: for SQLite set up for one
    writer (WAL, synchronous=NORMAL, busy timeout, BEGIN IMMEDIATE); for PostgreSQL with the session
    timeouts, when given. Statements run on the calling thread: no hand-off per statement."""
    url = database_url(cfg.url)
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            # one shared connection, or every checkout would see a new, empty database
            engine = sa.create_engine(
                url,
                echo=cfg.echo,
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
                json_serializer=jsontext.dumps,
            )
        else:
            # every transaction ends in an explicit commit or rollback: no reset round trip on return;
            # readers on many threads each take a connection of their own, kept open (a new one costs its
            # pragmas, and SQLite connections are cheap to hold)
            engine = sa.create_engine(
                url,
                echo=cfg.echo,
                pool_reset_on_return=None,
                pool_size=max(cfg.pool_size, SQLITE_POOL),
                max_overflow=-1,
                json_serializer=jsontext.dumps,
            )
        _sqlite_setup(engine, cfg)
        return engine
    return sa.create_engine(url, **_postgresql_options(cfg, timeouts, asynchronous=False))


def create_async_engine_for_loop(cfg: DatabaseConfig, timeouts: SessionTimeouts | None = None) -> AsyncEngine:
    """PostgreSQL's async engine (asyncpg), for reads on an event loop that already runs (the admin API).

    SQLAlchemy's asyncio extension is imported here, when first needed: a command-line scan never loads
    it (it costs a tenth of a second of start-up). SQLite has none: see Database.open_async."""
    from sqlalchemy.ext.asyncio import create_async_engine

    url = database_url(cfg.url, asynchronous=True)
    return create_async_engine(url, **_postgresql_options(cfg, timeouts, asynchronous=True))


def _postgresql_options(
    cfg: DatabaseConfig, timeouts: SessionTimeouts | None, *, asynchronous: bool
) -> dict[str, Any]:
    """A PostgreSQL pool's settings, the same for both engines: pool_size kept, twice as many more under
    load, a ping before reuse, and the session timeouts in the driver's own form."""
    return {
        "echo": cfg.echo,
        "pool_size": cfg.pool_size,
        "max_overflow": 2 * cfg.pool_size,
        "pool_pre_ping": True,
        "connect_args": {} if timeouts is None else timeouts.connect_args(asynchronous=asynchronous),
        "json_serializer": jsontext.dumps,
    }


def _sqlite_setup(engine: sa.Engine, cfg: DatabaseConfig) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # let us issue BEGIN ourselves (pysqlite's implicit transactions defer the write lock)
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(cfg.busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # a write takes the write lock at BEGIN (IMMEDIATE), a read begins deferred, a migration EXCLUSIVE
        options = conn.get_execution_options()
        if options.get("scanguard_exclusive", False):
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
        else:
            conn.exec_driver_sql("BEGIN" if options.get("scanguard_readonly", False) else "BEGIN IMMEDIATE")


def run_migrations(sync_conn: sa.Connection) -> None:
    """Bring the schema to the newest Alembic revision on this connection.

    A database already at head (every start but the first) is recognised without importing Alembic,
    which would cost a command-line scan more than a tenth of a second; anything else goes to Alembic,
    under the database's migration lock, so that instances starting together on an empty database
    migrate one after the other and the later ones find the schema at head.
    """
    if schema_at_head(sync_conn):
        return
    migration_lock(sync_conn)
    if schema_at_head(sync_conn):
        return  # another instance migrated while this one waited for the lock
    heads = _script_heads()
    if sync_conn.dialect.name == "sqlite" and len(heads) == 1 and _sqlite_is_empty(sync_conn):
        create_at_head(sync_conn, next(iter(heads)))
        return
    upgrade_with_alembic(sync_conn)


def upgrade_with_alembic(sync_conn: sa.Connection) -> None:
    """Run the migration scripts up to head on this connection (an existing database, or PostgreSQL)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


def create_at_head(sync_conn: sa.Connection, head: str) -> None:
    """A new SQLite database: the declared tables made at once, stamped with the head revision.

    What Alembic recommends for a database built from scratch (`create_all`, then stamp head); the
    scripts' replay costs a first scan a tenth of a second. The result is the migrated schema, column for
    column and index for index (tests/integration/test_schema.py); SQLite's scripts make nothing else.
    """
    metadata.create_all(sync_conn)
    sync_conn.exec_driver_sql(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    )
    sync_conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES (?)", (head,))


def _sqlite_is_empty(sync_conn: sa.Connection) -> bool:
    return sync_conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar() == 0


def migration_lock(sync_conn: sa.Connection) -> None:
    """Hold the migration lock until this transaction ends.

    PostgreSQL: a transaction-level advisory lock (released by commit or rollback, or when the session
    dies), waited for without the sessions' lock and statement timeouts. Its idle bound is a minute, not
    half a lease: Alembic loads its scripts inside the transaction, which on a loaded machine idles longer
    than a short lease's half (instances started together then failed to migrate). SQLite: the transaction
    was begun EXCLUSIVE (the `scanguard_exclusive` execution option), which already serialises migrating
    processes.
    """
    if sync_conn.dialect.name != "postgresql":
        return
    sync_conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
    sync_conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
    sync_conn.exec_driver_sql(f"SET LOCAL idle_in_transaction_session_timeout = {MIGRATION_IDLE_MS}")
    sync_conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")


def schema_at_head(sync_conn: sa.Connection) -> bool:
    """Whether the database's Alembic revision is the scripts' head (False when unsure)."""
    heads = _script_heads()
    if not heads or not sa.inspect(sync_conn).has_table("alembic_version"):
        return False
    current = {row[0] for row in sync_conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
    return current == heads


@functools.cache
def _script_heads() -> frozenset[str]:
    """The head revisions of the migration scripts, read from their source; empty when unsure."""
    import ast

    revisions: set[str] = set()
    parents: set[str] = set()
    try:
        for script in sorted((MIGRATIONS / "versions").glob("*.py")):
            values: dict[str, Any] = {}
            for node in ast.parse(script.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target, value = node.targets[0], node.value
                elif isinstance(node, ast.AnnAssign) and node.value is not None:
                    target, value = node.target, node.value
                else:
                    continue
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision", "depends_on"):
                    values[target.id] = ast.literal_eval(value)
            if "revision" not in values:
                continue
            if not isinstance(values["revision"], str) or values.get("depends_on"):
                return frozenset()
            revisions.add(values["revision"])
            down = values.get("down_revision")
            parents.update([down] if isinstance(down, str) else down or ())
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    return frozenset(revisions - parents)
