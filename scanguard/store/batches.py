"""Scan batch transactions: what the database knows of a path range, and one batch's fenced commit."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import chain
from operator import itemgetter
from typing import Any, NamedTuple

import sqlalchemy as sa

from scanguard.records import FileRow, Identity, Job, Moved
from scanguard.scope import touching
from scanguard.store.leases import fence
from scanguard.store.moves import apply_moves, fill_identities, signed64
from scanguard.store.tables import media_files, scan_jobs
from scanguard.store.tx import Tx

ListedRow = tuple[str, int, float, str, int, int]
"""A new or changed file as the walk listed it (path, size, mtime, media_type, device, inode): nothing
hashed, read or failed — written as it is, with no object per row (walk.ListedFile)."""


@dataclass(frozen=True, slots=True)
class BatchCommit:
    """One batch of a scan: its upserts, vanished rows, counters and checkpoint, under a fencing token."""

    job_id: int
    library_id: int
    token: int
    checkpoint: str | None
    upserts: tuple[FileRow, ...] = ()
    listed: tuple[ListedRow, ...] = ()  # more upserts, as the walk listed them (device, inode unsigned)
    vanished_ids: tuple[int, ...] = ()
    found: int = 0
    processed: int = 0
    skipped: int = 0
    changed: int = 0
    bytes: int = 0
    errors: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    total_estimate: int | None = None
    quarantined: tuple[tuple[str, str, str], ...] = ()  # (path, reason, error) of files whose work failed
    moves: tuple[Moved, ...] = ()
    identities: tuple[Identity, ...] = ()

    @property
    def writes(self) -> bool:
        """Whether it changes any row beyond the job's own (files, marks, moves, identities, events)."""
        return bool(
            self.upserts
            or self.listed
            or self.vanished_ids
            or self.moves
            or self.identities
            or self.quarantined
        )

    def then(self, later: BatchCommit) -> BatchCommit:
        """This batch and the next one as one commit: counters added, the later checkpoint and rows.

        Only a batch that writes nothing of its own is carried on this way (`writes` is False).
        """
        reasons = dict(self.skip_reasons)
        for reason, n in later.skip_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
        return replace(
            later,
            checkpoint=later.checkpoint if later.checkpoint is not None else self.checkpoint,
            found=self.found + later.found,
            processed=self.processed + later.processed,
            skipped=self.skipped + later.skipped,
            changed=self.changed + later.changed,
            bytes=self.bytes + later.bytes,
            errors=self.errors + later.errors,
            skip_reasons=reasons,
            elapsed=self.elapsed + later.elapsed,
            total_estimate=later.total_estimate if later.total_estimate is not None else self.total_estimate,
        )


class Existing(NamedTuple):
    """What the database knows of one file, for the rescan comparison: the read's own row, made a tuple
    of this shape as it is (no conversion per row: a stretch's rows are read for every 1,000 files
    walked). The flags are truthy — 0/1 from SQLite, booleans from PostgreSQL."""

    id: int
    size: int
    mtime: float
    missing: int  # a flag: the row is marked missing
    failed: int = 0  # its per-file work failed (an error is recorded)
    bare: int = 0  # no per-file work ever ran on it (no metadata, no error)
    identified: int = 1  # its device and inode are recorded
    path: str = ""


_as_existing = partial(tuple.__new__, Existing)  # a row in Existing's column order, as it is
_path_of = itemgetter(7)


_NO_WORK = (sa.false(), sa.false())
PG_ROWS_PER_STATEMENT = 1000  # 13 parameters a row: well under PostgreSQL's 65,535 per statement


def _work_flags() -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    # JSON null and SQL NULL both read as 'null' text on either database
    no_meta = sa.func.coalesce(sa.cast(media_files.c.meta, sa.Text), "null") == "null"
    return media_files.c.error.is_not(None), sa.and_(media_files.c.error.is_(None), no_meta)


def in_scope(scope: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """Rows whose path lies in the scope (scanguard.scope): each path, and the range under it as a folder,
    so every term is an index range on (library_id, path)."""
    path = media_files.c.path
    return sa.or_(*(sa.or_(path == s, sa.and_(path >= s + "/", path < s + "0")) for s in scope))


def has_files_after(tx: Tx, library_id: int, after: str | None, scope: tuple[str, ...] = ()) -> bool:
    """Whether the library has any row past `after` (in the scope, if one is given): a scan that finds
    none reads no range at all."""
    query = sa.select(media_files.c.id).where(media_files.c.library_id == library_id)
    if after:
        query = query.where(media_files.c.path > after)
    if scope:
        touched = touching(scope, after, None)
        if not touched:
            return False
        query = query.where(in_scope(touched))
    return tx.conn.execute(query.limit(1)).first() is not None


def existing_files(
    tx: Tx,
    library_id: int,
    after: str | None,
    upto: str | None,
    *,
    work: bool = False,
    scope: tuple[str, ...] = (),
) -> dict[str, Existing]:
    """The rows of one library whose path lies in (after, upto] (and in the scope, if one is given); upto
    None means to the end.

    With `work`, each row also says whether its per-file work failed or never ran.
    """
    rows: Any
    if not scope and (compiled := _driver_range(tx.conn.dialect, work, bool(after), upto is not None)):
        # SQLite: the driver's own rows (ints, text, floats, 0/1 flags), no Row object or processing each
        values = compiled.construct_params({"library_id": library_id, "after": after, "upto": upto})
        cursor = tx.conn.connection.cursor()
        try:
            cursor.execute(compiled.string, tuple(values[name] for name in compiled.positiontup or ()))
            rows = cursor.fetchall()
        finally:
            cursor.close()
    else:
        query = _range_query(work, bool(after), upto is not None).params(
            library_id=library_id, after=after, upto=upto
        )
        if scope:
            touched = touching(scope, after, upto)
            if not touched:
                return {}
            query = query.where(in_scope(touched))
        rows = tx.conn.execute(query).all()
    # the rows as they are, keyed by path, without a Python call per row: that cost more than the query
    return dict(zip(map(_path_of, rows), map(_as_existing, rows), strict=True))


def _range_query(work: bool, after: bool, upto: bool) -> sa.Select[Any]:
    """The read of a stretch's rows, with `library_id`, `after` and `upto` bound by name."""
    failed, bare = _work_flags() if work else _NO_WORK
    query = sa.select(  # Existing's fields, in order
        media_files.c.id,
        media_files.c.size,
        media_files.c.mtime,
        media_files.c.missing_since.is_not(None),  # a flag from the database, no datetime per row
        failed,
        bare,
        media_files.c.inode.is_not(None),
        media_files.c.path,
    ).where(media_files.c.library_id == sa.bindparam("library_id"))
    if after:
        query = query.where(media_files.c.path > sa.bindparam("after"))
    if upto:
        query = query.where(media_files.c.path <= sa.bindparam("upto"))
    return query


_driver_ranges: weakref.WeakKeyDictionary[sa.Dialect, dict[tuple[bool, bool, bool], Any]] = (
    weakref.WeakKeyDictionary()
)


def _driver_range(dialect: sa.Dialect, work: bool, after: bool, upto: bool) -> Any:
    """The stretch read compiled for the driver's own cursor, or None where Core reads it (PostgreSQL: its
    flags and floats come through Core's processing as they are on SQLite's cursor)."""
    if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
        return None
    compiled = _driver_ranges.setdefault(dialect, {})
    key = (work, after, upto)
    if key not in compiled:
        compiled[key] = _range_query(work, after, upto).compile(dialect=dialect)
    return compiled[key]


def _upsert_statement(dialect: str, rows: list[dict[str, Any]] | None = None) -> Any:
    """The upsert of media rows; with `rows`, one statement carrying them all (multi-row VALUES)."""
    # each dialect's insert is imported when first used: a SQLite process never loads the PostgreSQL one
    stmt: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

        stmt = pg_insert(media_files)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

        stmt = sqlite_insert(media_files)
    if rows is not None:
        stmt = stmt.values(rows)
    return stmt.on_conflict_do_update(
        index_elements=[media_files.c.library_id, media_files.c.path],
        set_={
            "size": stmt.excluded.size,
            "mtime": stmt.excluded.mtime,
            "media_type": stmt.excluded.media_type,
            "quick_hash": stmt.excluded.quick_hash,
            "last_seen_at": stmt.excluded.last_seen_at,
            "error": stmt.excluded.error,
            "meta": stmt.excluded.meta,
            "device": stmt.excluded.device,
            "inode": stmt.excluded.inode,
            "missing_since": sa.null(),
            "vanished_job_id": sa.null(),
        },
    )


_UPSERT_COLUMNS = (
    "library_id",
    "scan_job_id",
    "path",
    "size",
    "mtime",
    "media_type",
    "quick_hash",
    "first_seen_at",
    "last_seen_at",
    "error",
    "meta",
    "device",
    "inode",
)


ROWS_PER_STATEMENT = 76
"""Rows in one multi-row upsert: 76 rows of 13 columns, 988 parameters, under SQLite's oldest limit (999)."""


@dataclass(frozen=True, slots=True)
class DriverUpsert:
    """The SQLite upsert as driver SQL: of one row, and of ROWS_PER_STATEMENT rows in one VALUES list."""

    one: str
    many: str

    def run(self, conn: sa.Connection, values: list[tuple[Any, ...]]) -> None:
        """Upsert `values` (one tuple per row, in _UPSERT_COLUMNS order), ROWS_PER_STATEMENT per statement.

        The driver releases and retakes the GIL at every step of a statement: one step per row let any
        other busy thread of the scan's process (the walk's reader, an API request) make each row wait for
        the GIL; one per 76 rows also parses, binds and plans 76 times less."""
        whole = len(values) - len(values) % ROWS_PER_STATEMENT
        if whole:
            conn.exec_driver_sql(
                self.many,
                [
                    tuple(chain.from_iterable(values[start : start + ROWS_PER_STATEMENT]))
                    for start in range(0, whole, ROWS_PER_STATEMENT)
                ],
            )
        if whole < len(values):
            conn.exec_driver_sql(self.one, values[whole:])


# per dialect object, forgotten with its engine (the cached SQL holds no reference to the dialect)
_driver_upserts: weakref.WeakKeyDictionary[sa.Dialect, DriverUpsert | None] = weakref.WeakKeyDictionary()
_PLAIN_COLUMNS = (
    "library_id",
    "scan_job_id",
    "path",
    "size",
    "media_type",
    "quick_hash",
    "error",
    "device",
    "inode",
)


def _driver_upsert(dialect: sa.Dialect) -> DriverUpsert | None:
    """The SQLite upsert as driver SQL, or None when this dialect needs the Core path.

    Core's executemany spends most of a batch building and processing a dict per row; the driver takes
    tuples. The SQL is compiled from the same Core statement, so both paths write the same thing; the
    multi-row form repeats its one VALUES group. Only when the per-row values need no bind processing
    (mtime's to_float is moot for a float): the two timestamps and meta are processed by the caller.
    """
    if dialect in _driver_upserts:
        return _driver_upserts[dialect]
    upsert: DriverUpsert | None = None
    if dialect.name == "sqlite" and dialect.paramstyle == "qmark":
        compiled = _upsert_statement("sqlite").compile(dialect=dialect, column_keys=list(_UPSERT_COLUMNS))
        group = "(" + ", ".join("?" * len(_UPSERT_COLUMNS)) + ")"
        one = compiled.string
        if (
            tuple(compiled.positiontup or ()) == _UPSERT_COLUMNS
            and one.count(f" VALUES {group} ") == 1
            and not any(_processor(dialect, name) is not _same for name in _PLAIN_COLUMNS)
        ):
            many = one.replace(f" VALUES {group} ", f" VALUES {', '.join([group] * ROWS_PER_STATEMENT)} ")
            upsert = DriverUpsert(one, many)
    _driver_upserts[dialect] = upsert
    return upsert


def _processor(dialect: sa.Dialect, column: str) -> Callable[[Any], Any]:
    """The bind processor Core would apply to a media_files column on this dialect."""
    return media_files.c[column].type.dialect_impl(dialect).bind_processor(dialect) or _same


def _same(value: Any) -> Any:
    return value


def _as_file_rows(listed: tuple[ListedRow, ...]) -> list[FileRow]:
    return [
        FileRow(path, size, mtime, kind, device=signed64(dev), inode=signed64(ino))
        for path, size, mtime, kind, dev, ino in listed
    ]


def _upsert(tx: Tx, batch: BatchCommit) -> None:
    dialect = tx.conn.dialect
    upsert = _driver_upsert(dialect)
    now = tx.now
    if upsert is None:
        files = [*batch.upserts, *_as_file_rows(batch.listed)]
        rows = [
            {
                "library_id": batch.library_id,
                "scan_job_id": batch.job_id,
                "path": f.path,
                "size": f.size,
                "mtime": f.mtime,
                "media_type": f.media_type,
                "quick_hash": f.quick_hash,
                "first_seen_at": now,
                "last_seen_at": now,
                "error": f.error,
                "meta": f.meta,
                "device": f.device,
                "inode": f.inode,
            }
            for f in files
        ]
        if tx.dialect != "postgresql":
            tx.conn.execute(_upsert_statement(tx.dialect), rows)
            return
        # PostgreSQL: multi-row statements, never psycopg's executemany — that runs in libpq's pipeline
        # mode, and a session a frozen process leaves inside a pipeline is never ended by
        # idle_in_transaction_session_timeout, so its row locks would outlive any lease (the freeze test)
        for start in range(0, len(rows), PG_ROWS_PER_STATEMENT):
            tx.conn.execute(_upsert_statement(tx.dialect, rows[start : start + PG_ROWS_PER_STATEMENT]))
        return
    library_id, job_id = batch.library_id, batch.job_id
    stamp = _processor(dialect, "first_seen_at")(now)
    meta = _processor(dialect, "meta")
    no_meta = meta(None)
    values: list[tuple[Any, ...]] = [
        (
            library_id,
            job_id,
            f.path,
            f.size,
            float(f.mtime),
            f.media_type,
            f.quick_hash,
            stamp,
            stamp,
            f.error,
            no_meta if f.meta is None else meta(f.meta),
            f.device,
            f.inode,
        )
        for f in batch.upserts
    ]
    # the walk's own rows: one tuple each, no object (the hot path of a scan without per-file work)
    values += [
        (
            library_id,
            job_id,
            path,
            size,
            float(mtime),
            kind,
            None,
            stamp,
            stamp,
            None,
            no_meta,
            signed64(dev),
            signed64(ino),
        )
        for path, size, mtime, kind, dev, ino in batch.listed
    ]
    upsert.run(tx.conn, values)


def _progress(processed: int, total: int | None) -> float:
    if not total:
        return 0.0
    return min(99.9, 100.0 * processed / max(total, processed, 1))


def commit_batch(tx: Tx, batch: BatchCommit) -> Job:
    """One batch, atomically: upserts, vanished marks, moves, identity fills, counters, checkpoint,
    heartbeat — or nothing. Moves come after the vanished marks: a moved row is present, whatever marked it."""
    job = fence(tx, batch.job_id, batch.library_id, batch.token)
    if batch.upserts or batch.listed:
        _upsert(tx, batch)
    if batch.vanished_ids:
        tx.conn.execute(
            media_files.update()
            .where(media_files.c.id.in_(batch.vanished_ids), media_files.c.missing_since.is_(None))
            .values(vanished_job_id=batch.job_id)
        )
    if batch.moves:
        apply_moves(tx, batch.library_id, batch.job_id, batch.moves)
    if batch.identities:
        fill_identities(tx, batch.identities)
    reasons = dict(job.skip_reasons)
    for reason, n in batch.skip_reasons.items():
        reasons[reason] = reasons.get(reason, 0) + n
    processed = job.files_processed + batch.processed
    total = batch.total_estimate if batch.total_estimate is not None else job.total_estimate
    values: dict[str, Any] = {
        "files_found": job.files_found + batch.found,
        "files_processed": processed,
        "files_skipped": job.files_skipped + batch.skipped,
        "files_changed": job.files_changed + batch.changed,
        "files_moved": job.files_moved + len(batch.moves),
        "bytes_processed": job.bytes_processed + batch.bytes,
        "errors": job.errors + batch.errors,
        "skip_reasons": reasons,
        "checkpoint": batch.checkpoint if batch.checkpoint is not None else job.checkpoint,
        "total_estimate": total,
        "progress": _progress(processed, total),
        "active_seconds": job.active_seconds + batch.elapsed,
        "heartbeat_at": tx.now,
        "updated_at": tx.now,
    }
    tx.conn.execute(scan_jobs.update().where(scan_jobs.c.id == job.id).values(**values))
    for path, reason, error in batch.quarantined:
        tx.event(
            "file.quarantined",
            library_id=batch.library_id,
            job_id=batch.job_id,
            path=path,
            reason=reason,
            error=error,
        )
    return replace(job, **values)
