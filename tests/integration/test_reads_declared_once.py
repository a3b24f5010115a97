"""Issue 17.1: a read is declared once (a frozen value with its SQL) and runs sync or async from that
declaration alone — no seam method, client method, Runtime call or awaitable twin to add."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

import scanguard
from scanguard.store.reads import GetJob, ListJobs, Read
from scanguard.store.tables import media_files
from scanguard.store.tx import Tx

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True, slots=True)
class LongestPath(Read[str | None]):
    """A read the product does not have: the longest indexed path of a library (declared only here)."""

    library_id: int

    def run(self, tx: Tx) -> str | None:
        query = (
            sa.select(media_files.c.path)
            .where(media_files.c.library_id == self.library_id)
            .order_by(sa.func.length(media_files.c.path).desc(), media_files.c.path)
            .limit(1)
        )
        return tx.conn.execute(query).scalar()


def test_a_read_declared_in_one_place_runs_on_a_thread_and_on_the_event_loop(
    db_url: str, tmp_path: Path, runtime_factory: Callable[..., scanguard.Runtime]
) -> None:
    """The same declaration through the store seam (a thread) and the database's `aread` (the event loop:
    asyncpg on PostgreSQL, a reader thread on SQLite); its class name is the operation's name."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "short.mp3").write_bytes(b"x")
    (tmp_path / "a" / "a much longer name.flac").write_bytes(b"x")
    rt = runtime_factory()
    library = rt.add_library(tmp_path / "a")
    rt.wait_for_job(rt.start_scan(library.id).id, timeout=30)
    query = LongestPath(library.id)
    assert query.op == "longest_path"

    assert rt.store.read(query) == "a much longer name.flac"

    async def on_the_loop() -> str | None:
        rt.database.open_async()
        try:
            return await rt.database.aread(query)
        finally:
            await rt.database.close_async()

    assert asyncio.run(on_the_loop()) == "a much longer name.flac"


def test_a_read_checks_its_own_arguments_before_any_connection() -> None:
    """A declared read with a bad id is refused when it is made: BadRequest naming the field."""
    with pytest.raises(scanguard.BadRequest, match="job_id"):
        GetJob(0)
    with pytest.raises(scanguard.BadRequest, match="status"):
        ListJobs(("sleeping",))
