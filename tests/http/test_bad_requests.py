"""A battery of bad requests: each gets its 4xx in the one error shape, and the database does not change."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.http.conftest import Api, ServerProcess, server_env
from tests.support.db import snapshot
from tests.support.trees import build_tree

pytestmark = pytest.mark.timeout(120)

BAD_IDS = ["abc", "-1", "1e9", "0", "99999999999999999999", "9223372036854775808", "1.5", "0x10", "01", "%20"]
ID_ROUTES = [
    ("POST", "/api/admin/scanner/safe/start/{}"),
    ("POST", "/api/admin/scanner/safe/pause/{}"),
    ("POST", "/api/admin/scanner/safe/resume/{}"),
    ("DELETE", "/api/admin/scanner/safe/jobs/{}"),
    ("POST", "/api/admin/scanner/start/{}"),
    ("POST", "/api/admin/scanner/pause/{}"),
    ("POST", "/api/admin/scanner/resume/{}"),
    ("DELETE", "/api/admin/scanner/jobs/{}"),
    ("GET", "/api/admin/scanner/jobs/{}"),
    ("GET", "/api/admin/libraries/{}"),
    ("DELETE", "/api/admin/libraries/{}"),
    ("GET", "/api/admin/libraries/{}/files"),
]
QUERY_ROUTES = ["/api/admin/scanner/jobs", "/api/admin/events", "/api/admin/libraries/{lib}/files"]
BAD_QUERIES = [
    "limit=0", "limit=1001", "limit=abc", "limit=-1", "limit=1.0", "offset=-1", "offset=2147483648",
    "offset=x", "limit=1&limit=2",
]  # fmt: skip


@dataclass
class World:
    root: Path
    server: ServerProcess
    api: Api
    allowed: Path
    outside: Path
    library_id: int  # scanned to completion: its job is completed
    completed_job: int
    busy_library_id: int  # holds a paused job
    paused_job: int


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("bad")
    allowed, outside = root / "allowed", root / "outside"
    build_tree(allowed / "done", 30, 3)
    build_tree(allowed / "busy", 3000, 0, hidden=False, symlinks=False)
    build_tree(outside, 3)
    (allowed / "escape").symlink_to(outside, target_is_directory=True)
    (allowed / "a-file.flac").write_bytes(b"x")
    env = server_env(root / "data", SCANGUARD_SCAN_BATCH_SIZE="2", SCANGUARD_HTTP_ALLOWED_ROOTS=str(allowed))
    server = ServerProcess(root, f"sqlite:///{root / 'scanguard.db'}", env, ())
    api = Api(server.url)
    done = api.post("/api/admin/libraries", json={"path": str(allowed / "done")}).json["library"]["id"]
    completed = api.post(f"/api/admin/scanner/safe/start/{done}").json["job"]["id"]
    api.wait_job(completed, ("completed",))
    busy = api.post("/api/admin/libraries", json={"path": str(allowed / "busy")}).json["library"]["id"]
    paused = api.post(f"/api/admin/scanner/safe/start/{busy}").json["job"]["id"]
    assert api.post(f"/api/admin/scanner/safe/pause/{paused}").status == 200
    yield World(root, server, api, allowed, outside, done, completed, busy, paused)
    api.close()
    server.terminate()


@pytest.fixture
def unchanged(world: World) -> Iterator[None]:
    """The database (every table, every row) is the same after the test as before it."""
    before = snapshot(world.server.database_url)
    yield
    assert snapshot(world.server.database_url) == before


def check(reply: Any, status: int, code: str | None) -> None:
    assert reply.status == status, (reply.status, reply.text[:300])
    assert reply.headers["Content-Type"].startswith("application/json")
    assert set(reply.json) == {"error"}, reply.json
    assert set(reply.json["error"]) == {"code", "message", "details"}, reply.json
    assert isinstance(reply.json["error"]["message"], str)
    assert reply.json["error"]["message"]
    if code is not None:
        assert reply.json["error"]["code"] == code, reply.json
    assert "Traceback" not in reply.text


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize(("method", "route"), ID_ROUTES)
def test_a_malformed_id_is_a_400_and_changes_nothing(
    world: World, method: str, route: str, bad_id: str
) -> None:
    check(world.api.request(method, route.format(bad_id)), 400, "bad_request")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(("method", "route"), ID_ROUTES)
def test_an_unknown_id_is_a_404_and_changes_nothing(world: World, method: str, route: str) -> None:
    check(world.api.request(method, route.format(987654321)), 404, "not_found")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("route", "query"),
    [(r, q) for r in QUERY_ROUTES for q in BAD_QUERIES if not (r == "/api/admin/events" and "offset" in q)],
)
def test_an_out_of_range_paging_parameter_is_a_400(world: World, route: str, query: str) -> None:
    check(world.api.get(route.format(lib=world.library_id) + "?" + query), 400, "bad_request")


FILTERS = [
    ("/api/admin/scanner/jobs", "status=bogus"),
    ("/api/admin/scanner/jobs", "status="),
    ("/api/admin/scanner/jobs", "library_id=0"),
    ("/api/admin/scanner/jobs", "library_id=abc"),
    ("/api/admin/events", "job_id=-5"),
    ("/api/admin/events", "library_id=1e3"),
    ("/api/admin/events", "after_id=-1"),
    ("/api/admin/events", "after_id=99999999999999999999"),
    ("/api/admin/events", "kind="),
    ("/api/admin/events", "kind=" + "x" * 65),
    ("/api/admin/events", "newest_first=yes"),
    ("/api/admin/events", "family=files"),
    ("/api/admin/events", "family=job&family=file"),
    ("/api/admin/events/stream", "family=job."),
    ("/api/admin/events/stream", "job_id=abc"),
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(("route", "query"), FILTERS)
def test_a_bad_filter_is_a_400(world: World, route: str, query: str) -> None:
    check(world.api.get(f"{route}?{query}"), 400, "bad_request")


@pytest.mark.usefixtures("unchanged")
def test_a_bad_last_event_id_is_a_400(world: World) -> None:
    check(world.api.get("/api/admin/events/stream", headers={"Last-Event-ID": "abc"}), 400, "bad_request")


@pytest.mark.usefixtures("unchanged")
def test_illegal_transitions_are_409_naming_the_state(world: World) -> None:
    api = world.api
    check(api.post(f"/api/admin/scanner/safe/pause/{world.paused_job}"), 409, "illegal_transition")
    check(api.post(f"/api/admin/scanner/safe/pause/{world.completed_job}"), 409, "illegal_transition")
    check(api.post(f"/api/admin/scanner/safe/resume/{world.completed_job}"), 409, "illegal_transition")
    busy = api.post(f"/api/admin/scanner/safe/start/{world.busy_library_id}")
    check(busy, 409, "library_busy")
    assert busy.json["error"]["details"]["job_id"] == world.paused_job
    check(api.post(f"/api/admin/scanner/start/{world.busy_library_id}"), 409, "library_busy")
    check(api.post(f"/api/admin/scanner/pause/{world.busy_library_id}"), 409, "illegal_transition")
    check(api.post(f"/api/admin/scanner/pause/{world.library_id}"), 409, "no_active_job")


def _bodies(world: World) -> list[tuple[str, Any, dict[str, str], int, str]]:
    """(case id, raw body, headers, status, code)."""
    ok_dir = str(world.allowed / "done" / "Artist 000")
    j = {"Content-Type": "application/json"}

    def body(obj: Any) -> bytes:
        return json.dumps(obj).encode()

    return [
        ("malformed-json", b'{"path": ', j, 400, "bad_request"),
        ("trailing-garbage", b'{"path": "/x"} x', j, 400, "bad_request"),
        ("not-utf8", b'{"path": "\xff\xfe"}', j, 400, "bad_request"),
        ("nan", b'{"path": NaN}', j, 400, "bad_request"),
        ("array", body([ok_dir]), j, 400, "bad_request"),
        ("string", body(ok_dir), j, 400, "bad_request"),
        ("null", b"null", j, 400, "bad_request"),
        ("empty-body", b"", j, 400, "bad_request"),
        ("missing-path", body({"name": "x"}), j, 400, "bad_request"),
        ("path-number", body({"path": 5}), j, 400, "bad_request"),
        ("path-null", body({"path": None}), j, 400, "bad_request"),
        ("path-bool", body({"path": True}), j, 400, "bad_request"),
        ("path-list", body({"path": [ok_dir]}), j, 400, "bad_request"),
        ("path-empty", body({"path": ""}), j, 400, "bad_request"),
        ("path-blank", body({"path": "   "}), j, 400, "bad_request"),
        ("path-nul", body({"path": ok_dir + "\x00x"}), j, 400, "bad_request"),
        ("path-surrogate", b'{"path": "/tmp/\\ud800"}', j, 400, "bad_request"),
        ("path-too-long", body({"path": "/" + "a/" * 3000}), j, 400, "bad_request"),
        ("component-too-long", body({"path": str(world.allowed / ("n" * 300))}), j, 404, "not_found"),
        ("path-missing-dir", body({"path": str(world.allowed / "nope")}), j, 404, "not_found"),
        ("path-is-a-file", body({"path": str(world.allowed / "a-file.flac")}), j, 404, "not_found"),
        ("name-number", body({"path": ok_dir, "name": 5}), j, 400, "bad_request"),
        ("name-empty", body({"path": ok_dir, "name": ""}), j, 400, "bad_request"),
        ("name-too-long", body({"path": ok_dir, "name": "n" * 256}), j, 400, "bad_request"),
        ("kind-unknown", body({"path": ok_dir, "kind": "videos"}), j, 400, "bad_request"),
        ("kind-number", body({"path": ok_dir, "kind": 3}), j, 400, "bad_request"),
        ("extra-field", body({"path": ok_dir, "recursive": True}), j, 400, "bad_request"),
        ("deep-nesting", b"[" * 30000 + b"]" * 30000, j, 400, "bad_request"),
        ("text-plain", body({"path": ok_dir}), {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (
            "form",
            b"path=/tmp",
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        ("no-content-type", body({"path": ok_dir}), {}, 415, "unsupported_media_type"),
        ("too-large", body({"path": ok_dir, "name": "n" * 70_000}), j, 413, "body_too_large"),
        ("outside-roots", body({"path": str(world.outside)}), j, 403, "path_not_allowed"),
        ("dotdot-escape", body({"path": str(world.allowed / ".." / "outside")}), j, 403, "path_not_allowed"),
        ("symlink-escape", body({"path": str(world.allowed / "escape")}), j, 403, "path_not_allowed"),
        ("root-dir", body({"path": "/"}), j, 403, "path_not_allowed"),
        ("already-a-library", body({"path": str(world.allowed / "done")}), j, 409, "library_exists"),
    ]


def _body_case_ids() -> list[str]:
    return [
        "malformed-json", "trailing-garbage", "not-utf8", "nan", "array", "string", "null", "empty-body",
        "missing-path", "path-number", "path-null", "path-bool", "path-list", "path-empty", "path-blank",
        "path-nul", "path-surrogate", "path-too-long", "component-too-long", "path-missing-dir", "path-is-a-file",
        "name-number", "name-empty", "name-too-long", "kind-unknown", "kind-number", "extra-field",
        "deep-nesting", "text-plain", "form", "no-content-type", "too-large", "outside-roots", "dotdot-escape",
        "symlink-escape", "root-dir", "already-a-library",
    ]  # fmt: skip


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("case", _body_case_ids())
def test_a_bad_library_body_gets_its_4xx_and_adds_nothing(world: World, case: str) -> None:
    _, raw, headers, status, code = next(c for c in _bodies(world) if c[0] == case)
    reply = world.api.post("/api/admin/libraries", data=raw, headers=headers)
    check(reply, status, code)


@pytest.mark.usefixtures("unchanged")
def test_a_huge_body_is_a_413_on_any_route(world: World) -> None:
    big = b"x" * 200_000
    check(
        world.api.post(f"/api/admin/scanner/safe/start/{world.library_id}", data=big), 413, "body_too_large"
    )
    check(world.api.post("/api/admin/scanner/emergency/cleanup", data=big), 413, "body_too_large")


@pytest.mark.usefixtures("unchanged")
def test_a_chunked_body_past_the_limit_is_a_413(world: World) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"[" + b"1," * 4000 + b"1]"

    reply = world.api.post(
        "/api/admin/libraries", data=chunks(), headers={"Content-Type": "application/json"}
    )
    check(reply, 413, "body_too_large")
