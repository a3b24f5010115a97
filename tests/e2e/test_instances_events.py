"""DESIGN §8: every committed event is announced (LISTEN/NOTIFY), so each instance's event stream carries
the others' events within a second; a listener that lost its connection reconnects and replays."""

from __future__ import annotations

import asyncio
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.db import db_rows
from tests.support.instances import TOKEN, ServeProcess, serve_settings, serving
from tests.support.sse import SseReader
from tests.support.trees import build_tree, expected_media
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(150), pytest.mark.slow, pytest.mark.postgres]

WITHIN = 1.0  # seconds from an event's commit on A to its frame on B's stream


def _listener_pid(url: str, server: ServeProcess) -> int | None:
    rows = db_rows(
        url,
        "SELECT pid FROM pg_stat_activity "
        f"WHERE application_name = 'scanguard-listener:{server.pid}' AND datname = current_database()",
    )
    return int(rows[0][0]) if rows else None


async def _commit_while_cut_off(url: str, listener_pid: int) -> int:
    """In one transaction: write an event of a third instance, end the listener's session, commit —
    the NOTIFY goes out while the listener is gone, so only its replay can bring the event."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        async with conn.transaction():
            event_id = await conn.fetchval(
                "INSERT INTO events (at, kind, instance, data) "
                "VALUES (now(), 'test.missed', 'elsewhere', '{\"n\": 1}') RETURNING id"
            )
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", listener_pid)
        return int(event_id)
    finally:
        await conn.close()


def test_b_streams_what_a_does_within_a_second_and_replays_what_it_missed_while_cut_off(
    pg_url: str, tmp_path: Path
) -> None:
    """A runs a scan; B's SSE stream carries the library and job events of A's scan within a second each,
    and progress snapshots of it mid-scan; B's listening connection killed by pg_terminate_backend in the
    transaction that commits another event: B reconnects, replays it, and follows A's next scan."""
    root = tmp_path / "library"
    build_tree(root, 800, 0)
    settings = serve_settings(SCANGUARD_SCAN_BATCH_SIZE="2")
    with (
        serving(pg_url, tmp_path, ("a", settings), ("b", settings)) as (a, b),
        closing(SseReader(b.base + "/api/admin/events/stream?after_id=0", TOKEN)) as reader,
    ):
        wait_for(lambda: _listener_pid(pg_url, b), 30, "B's listener to connect")

        library, job = a.scan_folder(root)

        def seen(kind: str, job_id: int | None = None) -> Any:
            return next(
                (
                    f
                    for f in reader.events()
                    if f.event == kind and (job_id is None or f.data["job_id"] == job_id)
                ),
                None,
            )

        wait_for(
            lambda: seen("job.completed", job["id"]), 60, "A's job.completed on B's stream", interval=0.05
        )
        for kind in ("library.added", "job.started", "job.completed"):
            frame = seen(kind)
            assert frame.data["instance"] == job["owner"], "an event of A, on B's stream"
            ((committed,),) = db_rows(pg_url, f"SELECT at FROM events WHERE id = {frame.id}")
            lag = (frame.arrived - committed).total_seconds()
            assert lag <= WITHIN, f"{kind} reached B's stream {lag:.2f}s after A wrote it"
        mid_scan = [
            j
            for f in reader.snapshot()
            if f.event == "progress"
            for j in f.data["jobs"]
            if j["id"] == job["id"] and j["status"] == "running" and 0 < j["files_processed"] < 800
        ]
        assert mid_scan, "B's stream carried progress of A's scan while it ran"

        listener = _listener_pid(pg_url, b)
        assert listener is not None
        missed = asyncio.run(_commit_while_cut_off(pg_url, listener))
        wait_for(lambda: seen("test.missed"), 30, "B to replay the event it missed", interval=0.05)
        assert seen("test.missed").id == missed
        wait_for(
            lambda: (pid := _listener_pid(pg_url, b)) and pid != listener, 30, "B's listener to reconnect"
        )
        assert "events.replayed" in b.log_text()
        listener_status = b.call("GET", "/api/admin/scanner/safeguards/status")["events_listener"]
        assert listener_status["connected"] is True
        assert listener_status["reconnects"] >= 1
        assert listener_status["last_id"] >= missed

        again = a.call("POST", f"/api/admin/scanner/safe/start/{library['id']}")["job"]
        wait_for(lambda: seen("job.completed", again["id"]), 60, "A's next scan on B's stream", interval=0.05)
        ids = [f.id for f in reader.events()]
        assert len(ids) == len(set(ids)), "no event twice"
        written = {int(i) for (i,) in db_rows(pg_url, f"SELECT id FROM events WHERE id >= {min(ids)}")}
        assert written <= set(ids), f"events B's stream skipped: {sorted(written - set(ids))}"
    assert len(expected_media(root)) == 800


async def _commit_out_of_order_while_cut_off(url: str, server: ServeProcess, seen: Any) -> tuple[int, int]:
    """Event `early` takes its id first but commits last: `late` (a higher id) commits and reaches the
    server's stream, then the server's listener is cut off, then `early` commits while it is gone."""
    holder = await asyncpg.connect(url, timeout=10)
    other = await asyncpg.connect(url, timeout=10)
    insert = (
        "INSERT INTO events (at, kind, instance, data) VALUES (now(), $1, 'elsewhere', '{}') RETURNING id"
    )
    try:
        async with holder.transaction():
            early = int(await holder.fetchval(insert, "test.early"))
            late = int(await other.fetchval(insert, "test.late"))
            await asyncio.to_thread(wait_for, lambda: seen(late), 30, "the later id on the stream", 0.05)
            listener = await asyncio.to_thread(_listener_pid, url, server)
            assert listener is not None
            assert await holder.fetchval("SELECT pg_terminate_backend($1)", listener)
        return early, late
    finally:
        await holder.close()
        await other.close()


def test_an_event_that_commits_below_the_last_id_heard_while_the_listener_is_cut_off_is_replayed(
    pg_url: str, tmp_path: Path
) -> None:
    """Ids are handed out before commit, so instances commit out of id order: the listener has heard a
    higher id when a lower one commits while its connection is gone. Its replay after reconnecting brings
    that lower one too (not only the ids above the last it heard), once, on the stream."""
    with (
        serving(pg_url, tmp_path, ("b", serve_settings())) as (b,),
        closing(SseReader(b.base + "/api/admin/events/stream?after_id=0", TOKEN)) as reader,
    ):
        wait_for(lambda: _listener_pid(pg_url, b), 30, "the listener to connect")

        def seen(event_id: int) -> bool:
            return any(f.id == event_id for f in reader.events())

        early, late = asyncio.run(_commit_out_of_order_while_cut_off(pg_url, b, seen))
        assert early < late
        wait_for(lambda: seen(early), 30, "the lower id, committed while cut off, on the stream", 0.05)
        ids = [f.id for f in reader.events()]
        assert ids.count(early) == 1
        assert ids.count(late) == 1
        assert b.call("GET", "/api/admin/scanner/safeguards/status")["events_listener"]["reconnects"] >= 1
