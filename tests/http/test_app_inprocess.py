"""The app factory in this process, over a real socket: heartbeats, readiness, internal errors, lifecycle."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import stat
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import scanguard
from scanguard.actors.events import Publish
from scanguard.http import RUNTIME, create_app
from scanguard.http import events as event_routes
from scanguard.http.coalesce import Coalesced, SharedReads
from scanguard.records import Event
from tests.http.conftest import TOKEN, Api, ServerProcess
from tests.support.inprocess import InProcessServer
from tests.support.sse import SseReader
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def serve_app() -> Iterator[Callable[[web.Application], InProcessServer]]:
    servers: list[InProcessServer] = []

    def serve(app: web.Application) -> InProcessServer:
        servers.append(InProcessServer(app))
        return servers[-1]

    yield serve
    for server in reversed(servers):
        if server.loop.is_running():
            server.stop()


@pytest.fixture
def runtime(
    make_config: Callable[..., scanguard.Config], runtime_factory: Callable[..., scanguard.Runtime]
) -> scanguard.Runtime:
    return runtime_factory(make_config(http={"admin_token": TOKEN}))


def test_the_event_stream_sends_heartbeat_comments_while_nothing_happens(
    runtime: scanguard.Runtime, serve_app: Callable[..., InProcessServer], api_for: Callable[..., Api]
) -> None:
    server = serve_app(create_app(runtime, sse_heartbeat=0.2))
    api = api_for(server.url)

    async def first_comments() -> list[str]:
        comments: list[str] = []
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with api.session.get(server.url + "/api/admin/events/stream", headers=headers) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert response.headers["Cache-Control"] == "no-cache"
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith(":"):
                    comments.append(line)
                if len(comments) == 2:
                    return comments
        return comments

    assert api.loop.run_until_complete(asyncio.wait_for(first_comments(), 10)) == [": heartbeat"] * 2


def test_a_stream_too_slow_for_its_queue_catches_up_from_below_the_lowest_id_it_dropped(
    runtime: scanguard.Runtime,
    serve_app: Callable[..., InProcessServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With several instances a lower id commits after a higher one was sent. A burst that overflows the
    stream's live queue is caught up from the table from below the lowest id it dropped — not only after
    the newest id sent — and nothing already sent is sent twice."""
    monkeypatch.setattr(event_routes, "LIVE_QUEUE", 2)
    catch_ups: list[int] = []
    replay = event_routes._replay

    async def counted(*args: Any, **kwargs: Any) -> int:
        if len(args) > 5:  # the catch-up after an overflow passes which events are fresh
            catch_ups.append(args[3])
        return await replay(*args, **kwargs)

    monkeypatch.setattr(event_routes, "_replay", counted)
    server = serve_app(create_app(runtime))
    database = runtime.config.database.url.removeprefix("sqlite:///")
    bus = runtime._running_core().bus  # events of another instance, as the listener hands them on

    def commit(ids: list[int]) -> dict[int, Event]:
        with sqlite3.connect(database) as db:
            db.executemany(
                "INSERT INTO events (id, at, kind, instance, data) "
                "VALUES (?, CURRENT_TIMESTAMP, 'test.burst', 'elsewhere', '{}')",
                [(i,) for i in ids],
            )
        return {e.id: e for e in runtime.events(after_id=ids[0] - 1, limit=len(ids))}

    (newest,) = sqlite3.connect(database).execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
    reader = SseReader(server.url + f"/api/admin/events/stream?after_id={newest}", TOKEN)
    try:
        marker = commit([newest + 1])  # once it arrived, the stream follows the bus (past its replay)
        bus.tell(Publish(tuple(marker.values()), remote=True))
        wait_for(lambda: newest + 1 in {f.id for f in reader.events()}, 10, "the marker on the stream")
        ids = list(range(newest + 2, newest + 42))
        stored = commit(ids)
        assert sorted(stored) == ids
        bus.tell(Publish((stored[ids[-1]],), remote=True))  # the highest id, heard first
        wait_for(lambda: ids[-1] in {f.id for f in reader.events()}, 10, "the highest id on the stream")
        # the lower ones at once, while the server's loop is busy: they all reach the stream's queue
        # before it can drain any (a subscriber after the stream's tells when the bus handed on the last)
        handed, busy, released = threading.Event(), threading.Event(), threading.Event()
        runtime.subscribe(lambda event: event.id == ids[-2] and handed.set())
        server.loop.call_soon_threadsafe(lambda: (busy.set(), released.wait(10)))
        assert busy.wait(10)
        bus.tell(Publish(tuple(stored[i] for i in ids[:-1]), remote=True))
        assert handed.wait(10)
        released.set()
        wait_for(lambda: {f.id for f in reader.events()} >= set(ids), 10, "every id on the stream")
        sent = [f.id for f in reader.events() if f.id != newest + 1]
        assert sorted(sent) == ids, "each event once"
        assert catch_ups, "the burst overflowed the queue"
        assert catch_ups[0] < ids[0], f"caught up after {catch_ups[0]}, below the lowest id dropped"
    finally:
        runtime.stop()
        reader.close()


def test_readyz_and_admin_routes_answer_503_once_the_runtime_has_stopped(
    runtime: scanguard.Runtime, serve_app: Callable[..., InProcessServer], api_for: Callable[..., Api]
) -> None:
    api = api_for(serve_app(create_app(runtime)).url)
    assert api.get("/readyz", token=None).status == 200
    runtime.stop()
    ready = api.get("/readyz", token=None)
    assert ready.status == 503
    assert ready.json["error"]["code"] == "not_ready"
    admin = api.get("/api/admin/libraries")
    assert admin.status == 503
    assert admin.json["error"]["code"] == "runtime_stopped"
    assert api.get("/healthz", token=None).status == 200


def test_an_unexpected_failure_is_a_500_internal_with_no_detail_or_trace_for_the_client(
    runtime: scanguard.Runtime,
    serve_app: Callable[..., InProcessServer],
    api_for: Callable[..., Api],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken() -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(runtime.aio, "list_libraries", broken)
    api = api_for(serve_app(create_app(runtime)).url)
    reply = api.get("/api/admin/libraries")
    assert reply.status == 500
    assert reply.json == {"error": {"code": "internal", "message": "internal server error", "details": {}}}
    assert "secret" not in reply.text
    assert "Traceback" not in reply.text


def test_an_app_made_from_a_config_starts_its_own_runtime_and_stops_it_on_cleanup(
    make_config: Callable[..., scanguard.Config],
    serve_app: Callable[..., InProcessServer],
    api_for: Callable[..., Api],
    tmp_path: Path,
) -> None:
    app = create_app(make_config(http={"admin_token": TOKEN}))
    server = serve_app(app)
    api = api_for(server.url)
    assert api.get("/readyz", token=None).status == 200
    (tmp_path / "lib").mkdir()
    assert api.post("/api/admin/libraries", json={"path": str(tmp_path / "lib")}).status == 201
    slot = app[RUNTIME]
    assert slot.owned
    assert slot.runtime is not None
    assert slot.runtime.running
    server.stop()
    assert not slot.runtime.running


def test_an_app_refuses_to_be_made_without_an_admin_token(
    make_config: Callable[..., scanguard.Config],
) -> None:
    with pytest.raises(scanguard.ConfigError, match="admin_token"):
        create_app(make_config())


def test_concurrent_reads_share_one_call_but_never_one_that_started_before_them() -> None:
    async def scenario() -> tuple[int, list[int]]:
        calls = 0
        gate = asyncio.Event()

        async def read() -> int:
            nonlocal calls
            calls += 1
            mine = calls
            await gate.wait()
            return mine

        shared = Coalesced(read)
        early = asyncio.ensure_future(shared())  # starts call 1
        await asyncio.sleep(0)
        late = [asyncio.ensure_future(shared()) for _ in range(50)]  # arrive while call 1 runs
        await asyncio.sleep(0)
        gate.set()
        results = [await early, *[await t for t in late]]
        return calls, results

    calls, results = asyncio.run(scenario())
    assert calls == 2  # one for the early reader, one shared by all fifty late ones
    assert results == [1] + [2] * 50  # nobody who arrived during call 1 got its (older) answer


def test_reads_named_by_equal_values_share_one_run_and_leave_nothing_behind() -> None:
    """Issue 18 item 4: jobs?status=running under 100 clients costs the store one query at a time, not one
    per request; a different value is its own run; once nobody waits, no entry is kept."""

    async def scenario() -> tuple[list[str], list[str], int]:
        runs: list[str] = []
        gate = asyncio.Event()

        async def read(key: str) -> str:
            runs.append(key)
            await gate.wait()
            return f"{key}#{runs.count(key)}"

        shared = SharedReads(read)
        early = asyncio.ensure_future(shared("running"))
        await asyncio.sleep(0)
        late = [asyncio.ensure_future(shared("running")) for _ in range(30)]
        other = asyncio.ensure_future(shared("paused"))
        await asyncio.sleep(0)
        gate.set()
        answers = [await early, *[await t for t in late], await other]
        await asyncio.sleep(0)
        return runs, answers, len(shared)

    runs, answers, left = asyncio.run(scenario())
    assert sorted(runs) == ["paused", "running", "running"]  # 32 requests, three reads
    assert answers == ["running#1"] + ["running#2"] * 30 + ["paused#1"]  # none older than its request
    assert left == 0


def test_a_failed_shared_read_fails_the_requests_it_answers_and_the_later_ones_read_anew() -> None:
    async def scenario() -> tuple[list[object], str, int]:
        calls = 0

        async def read(_key: str) -> str:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0)
            if calls == 1:
                raise scanguard.StoreUnavailable("busy")
            return "fresh"

        shared = SharedReads(read)
        waiting = [asyncio.ensure_future(shared("k")) for _ in range(5)]
        answers = await asyncio.gather(*waiting, return_exceptions=True)
        results = [type(a).__name__ if isinstance(a, Exception) else a for a in answers]
        return results, await shared("k"), len(shared)

    results, after, left = asyncio.run(scenario())
    assert results == ["StoreUnavailable"] + ["fresh"] * 4  # the four queued behind the failed run read anew
    assert after == "fresh"
    assert left == 0


def test_serve_generates_a_token_once_keeps_it_private_and_reuses_it_after_a_restart(
    tmp_path: Path, sqlite_url: str, start_server: Callable[..., ServerProcess], api_for: Callable[..., Api]
) -> None:
    first = start_server(sqlite_url, env={"SCANGUARD_ADMIN_TOKEN": ""})
    kept = tmp_path / "data" / "scanguard" / "admin_token"
    token = kept.read_text().strip()
    assert len(token) >= 32
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert f"generated admin token (kept in {kept}): {token}" in first.log()
    assert api_for(first, token).get("/api/admin/libraries").status == 200
    assert api_for(first, TOKEN).get("/api/admin/libraries").status == 401
    assert first.terminate() == 0

    second = start_server(sqlite_url, env={"SCANGUARD_ADMIN_TOKEN": ""})
    assert token not in second.log()
    assert f"using the admin token kept in {kept}" in second.log()
    assert api_for(second, token).get("/api/admin/libraries").status == 200
    assert second.terminate() == 0


PROMTOOL = shutil.which("promtool")


def test_metrics_carry_no_created_series_and_pass_promtool(
    runtime: scanguard.Runtime,
    serve_app: Callable[[web.Application], InProcessServer],
    api_for: Callable[..., Api],
    tmp_path: Path,
) -> None:
    """Issue 11, item 6: no `_created` twin per counter and histogram; `promtool check metrics` is clean
    (Debian's prometheus package; the promtool part is skipped where it is not installed)."""
    library = runtime.add_library(tmp_path)
    runtime.wait_for_job(runtime.start_scan(library.id).id, timeout=30)
    api = api_for(serve_app(create_app(runtime)).url)
    api.get("/api/admin/scanner/current-jobs")
    text = api.get("/metrics", token=None).text
    assert "scanguard_operations_total{" in text
    assert "scanguard_http_requests_total{" in text
    assert "_created" not in text
    if PROMTOOL is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus): the _created part passed")
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not (checked.stdout + checked.stderr).strip(), checked.stdout + checked.stderr
