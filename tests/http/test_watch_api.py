"""Watching through the admin API of a real `scanguard serve`: the library's watch switch and object, its
events and its metrics."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.http.conftest import Api, ServerProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)

WATCHING = {
    "SCANGUARD_WATCH_DEFAULT": "true",
    "SCANGUARD_WATCH_SETTLE": "0.2",
    "SCANGUARD_WATCH_RESCAN_INTERVAL": "0",
}
WATCH_KEYS = {"enabled", "state", "reason", "message", "since", "pending"}


def library_of(api: Api, library_id: int) -> dict[str, Any]:
    return dict(api.get(f"/api/admin/libraries/{library_id}").json["library"])


def files_of(api: Api, library_id: int) -> set[str]:
    return api.all_files(library_id)


def test_serve_watches_a_library_added_without_saying_and_patch_switches_it(
    start_server: Callable[..., ServerProcess], api_for: Callable[..., Api], tmp_path: Path
) -> None:
    root = tmp_path / "music"
    (root / "a").mkdir(parents=True)
    (root / "a" / "one.flac").write_bytes(b"1" * 10)
    server = start_server(f"sqlite:///{tmp_path / 'db.sqlite'}", WATCHING)
    api = api_for(server)
    created = api.post("/api/admin/libraries", json={"path": str(root)})
    assert created.status == 201, created.text
    library = created.json["library"]
    assert set(library["watch"]) == WATCH_KEYS
    assert library["watch"]["enabled"] is True
    lid = library["id"]

    wait_for(lambda: library_of(api, lid)["watch"]["state"] == "watching", 20, "watching")
    wait_for(lambda: "a/one.flac" in files_of(api, lid), 20, "the catch-up scan")
    (root / "a" / "two.flac").write_bytes(b"2" * 10)
    wait_for(lambda: "a/two.flac" in files_of(api, lid), 20, "the new file indexed by a watch job")
    jobs = api.get(f"/api/admin/scanner/jobs?library_id={lid}").json["jobs"]
    assert {"catch_up", "watch"} <= {j["trigger"] for j in jobs}

    metrics = api.get("/metrics", token=None).text
    assert f'scanguard_watch_state{{library_id="{lid}",state="watching"}} 1.0' in metrics
    assert f'scanguard_watch_events_total{{library_id="{lid}"}}' in metrics
    assert f'scanguard_watch_pending{{library_id="{lid}"}}' in metrics
    promtool = shutil.which("promtool")
    if promtool is not None:
        checked = subprocess.run(
            [promtool, "check", "metrics"],
            input=metrics,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr

    off = api.request("PATCH", f"/api/admin/libraries/{lid}", json={"watch": False})
    assert off.status == 200, off.text
    assert off.json["library"]["watch"]["enabled"] is False
    assert off.json["library"]["watch"]["state"] == "off"
    changed = api.get(f"/api/admin/events?library_id={lid}&kind=library.watch_changed").json["events"]
    assert [e["data"]["watch"] for e in changed] == [False]

    on = api.request("PATCH", f"/api/admin/libraries/{lid}", json={"watch": True})
    assert on.status == 200, on.text
    wait_for(lambda: library_of(api, lid)["watch"]["state"] == "watching", 20, "watching again")
    assert server.terminate() == 0


def test_a_library_added_with_watch_false_is_not_watched_and_bad_patches_are_refused(
    start_server: Callable[..., ServerProcess], api_for: Callable[..., Api], tmp_path: Path
) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    server = start_server(f"sqlite:///{tmp_path / 'db.sqlite'}", WATCHING)
    api = api_for(server)
    created = api.post("/api/admin/libraries", json={"path": str(root), "watch": False})
    assert created.status == 201, created.text
    lid = created.json["library"]["id"]
    assert created.json["library"]["watch"] == {
        "enabled": False, "state": "off", "reason": None, "message": None, "since": None, "pending": 0,
    }  # fmt: skip
    assert api.get(f"/api/admin/scanner/jobs?library_id={lid}").json["jobs"] == []

    path = f"/api/admin/libraries/{lid}"
    for body in ({"watch": "yes"}, {"watch": 1}, {"watch": None}, {}, {"watch": True, "name": "x"}, [True]):
        reply = api.request("PATCH", path, json=body)
        assert reply.status == 400, (body, reply.text)
        assert reply.json["error"]["code"] == "bad_request"
    bad_type = api.request("PATCH", path, data=b"watch=true", headers={"Content-Type": "text/plain"})
    assert bad_type.status == 415
    missing = api.request("PATCH", "/api/admin/libraries/999", json={"watch": True})
    assert missing.status == 404
    assert missing.json["error"]["code"] == "not_found"
    bad_add = api.post("/api/admin/libraries", json={"path": str(root), "watch": "no"})
    assert bad_add.status == 400
    assert library_of(api, lid)["watch"]["enabled"] is False  # nothing changed
    assert server.terminate() == 0
