"""Moves keep identity (DESIGN §12): the rows a scan's new paths may be, and a batch's moves and identity
fills, written in the batch's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from scanguard.records import Identity, Moved
from scanguard.store.tables import PathType, media_files
from scanguard.store.tx import Tx

_WRAP = 1 << 64
_SIGNED_MAX = (1 << 63) - 1
LOOKUP_CHUNK = 1000  # inodes per IN list, rows per VALUES list: far below either database's parameter limit


def signed64(value: int) -> int:
    """A device or inode number (unsigned 64-bit on Linux) as the signed 64-bit integer the column holds."""
    return value - _WRAP if value > _SIGNED_MAX else value


@dataclass(frozen=True, slots=True)
class MoveSource:
    """A row of the library with a recorded identity: what a new path with that identity may be."""

    id: int
    path: str
    size: int
    mtime: float
    device: int
    inode: int
    missing: bool


def move_sources(tx: Tx, library_id: int, inodes: Sequence[int]) -> tuple[MoveSource, ...]:
    """The library's rows whose inode is one of `inodes` (signed): one indexed query, on (library_id, inode)."""
    found: list[MoveSource] = []
    unique = sorted(set(inodes))
    for start in range(0, len(unique), LOOKUP_CHUNK):
        rows = tx.conn.execute(
            sa.select(
                media_files.c.id,
                media_files.c.path,
                media_files.c.size,
                media_files.c.mtime,
                media_files.c.device,
                media_files.c.inode,
                media_files.c.missing_since.is_not(None),
            ).where(
                media_files.c.library_id == library_id,
                media_files.c.inode.in_(unique[start : start + LOOKUP_CHUNK]),
            )
        ).all()
        found.extend(
            MoveSource(id_, path, size, mtime, device, inode, bool(missing))
            for id_, path, size, mtime, device, inode, missing in rows
        )
    return tuple(found)


def _update_by_id(
    tx: Tx, columns: dict[str, sa.types.TypeEngine[Any]], rows: list[dict[str, Any]], **fixed: Any
) -> None:
    """UPDATE media_files SET <columns from each row>, <fixed> WHERE id = <row id>, for many rows.

    SQLite: one executemany. PostgreSQL: one statement joining a VALUES list — never psycopg's
    executemany, whose pipeline mode a frozen process could leave holding row locks (see batches)."""
    if not rows:
        return
    if tx.dialect != "postgresql":
        stmt = (
            media_files.update()
            .where(media_files.c.id == sa.bindparam("row_id"))
            .values({**{name: sa.bindparam(f"new_{name}") for name in columns}, **fixed})
        )
        tx.conn.execute(
            stmt, [{"row_id": r["id"], **{f"new_{name}": r[name] for name in columns}} for r in rows]
        )
        return
    for start in range(0, len(rows), LOOKUP_CHUNK):
        values = sa.values(
            sa.column("id", sa.Integer),
            *(sa.column(name, type_) for name, type_ in columns.items()),
            name="v",
        ).data([(r["id"], *(r[name] for name in columns)) for r in rows[start : start + LOOKUP_CHUNK]])
        tx.conn.execute(
            media_files.update()
            .where(media_files.c.id == values.c.id)
            .values({**{name: values.c[name] for name in columns}, **fixed})
        )


_MOVE_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "path": PathType,
    "size": sa.BigInteger(),
    "mtime": sa.Float(),
    "device": sa.BigInteger(),
    "inode": sa.BigInteger(),
}
_IDENTITY_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {"device": sa.BigInteger(), "inode": sa.BigInteger()}


def apply_moves(tx: Tx, library_id: int, job_id: int, moves: Sequence[Moved]) -> None:
    """Each moved row takes its new path and stat, is present again, and gets one `file.moved` event."""
    rows = [
        {"id": m.id, "path": m.path, "size": m.size, "mtime": m.mtime, "device": m.device, "inode": m.inode}
        for m in moves
    ]
    _update_by_id(
        tx, _MOVE_COLUMNS, rows, last_seen_at=tx.now, missing_since=sa.null(), vanished_job_id=sa.null()
    )
    for m in moves:
        tx.event("file.moved", library_id=library_id, job_id=job_id, **{"from": m.from_path, "to": m.path})


def fill_identities(tx: Tx, identities: Sequence[Identity]) -> None:
    """Record the device and inode of unchanged rows that had none."""
    rows = [{"id": i.id, "device": i.device, "inode": i.inode} for i in identities]
    _update_by_id(tx, _IDENTITY_COLUMNS, rows)
