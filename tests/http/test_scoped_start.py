"""`POST /api/admin/scanner/safe/start/{id}?path=REL` (issue 15, item 1): a scoped start over HTTP, its
refusals (400 invalid_scope, 400 past 100 paths, 409 busy) and the job object's scope, trigger and
files_moved — in the OpenAPI document too."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import scanguard
from scanguard.http import create_app
from scanguard.http.openapi import openapi_document
from tests.http.conftest import TOKEN, Api
from tests.support.inprocess import InProcessServer
from tests.support.trees import build_tree, expected_media
from tests.support.waiting import QUIET_SAFEGUARDS, GatedFileSystem

pytestmark = pytest.mark.timeout(60)

START = "/api/admin/scanner/safe/start/{}"


@pytest.fixture
def served(
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    api_for: Callable[..., Api],
) -> Iterator[tuple[scanguard.Runtime, Api, int, Path, GatedFileSystem]]:
    """A runtime serving the admin app in this process; its library (200 files) scanned once; a gate that
    can hold a walk before it lists Artist 001."""
    root = tmp_path / "lib"
    build_tree(root, 200, 0)
    fs = GatedFileSystem(root / "Artist 001")
    fs.release.set()  # open until a test closes it
    rt = runtime_factory(make_config(http={"admin_token": TOKEN}, safeguards=QUIET_SAFEGUARDS), fs=fs)
    server = InProcessServer(create_app(rt))
    try:
        api = api_for(server.url)
        library_id = api.post("/api/admin/libraries", json={"path": str(root)}).json["library"]["id"]
        first = api.post(START.format(library_id)).json["job"]
        api.wait_job(first["id"], ("completed",))
        yield rt, api, library_id, root, fs
    finally:
        fs.release.set()
        server.stop()


def test_a_start_with_paths_scans_only_them_and_the_job_shows_its_scope(
    db_url: str, served: tuple[scanguard.Runtime, Api, int, Path, GatedFileSystem]
) -> None:
    _rt, api, library_id, root, _fs = served
    shutil.rmtree(root / "Artist 000" / "Album 03")
    shutil.rmtree(root / "Artist 001" / "Album 04")  # outside the scope: stays indexed
    (root / "Artist 000" / "Album 03b").mkdir()

    reply = api.post(
        START.format(library_id),
        params=[
            ("path", "Artist 000/Album 03"),
            ("path", str(root / "Artist 000" / "Album 03b")),
            ("path", "x"),
        ],
    )

    assert reply.status == 201, reply.text
    job = reply.json["job"]
    assert job["scope"] == ["Artist 000/Album 03", "Artist 000/Album 03b", "x"]
    assert (job["trigger"], job["files_moved"]) == ("user", 0)
    done = api.wait_job(job["id"], ("completed",))
    assert (done["files_found"], done["files_removed"]) == (0, 10)
    assert len(api.all_files(library_id)) == len(expected_media(root)) + 10
    listed = api.get(f"/api/admin/scanner/jobs?library_id={library_id}").json["jobs"]
    assert {tuple(j["scope"]) for j in listed} == {(), ("Artist 000/Album 03", "Artist 000/Album 03b", "x")}


@pytest.mark.parametrize("bad", ["..", "../elsewhere", "Artist 000/../..", "/etc", "", "a\x00b"])
def test_a_path_escaping_the_library_answers_400_invalid_scope_and_starts_nothing(
    bad: str, db_url: str, served: tuple[scanguard.Runtime, Api, int, Path, GatedFileSystem]
) -> None:
    rt, api, library_id, _root, _fs = served

    reply = api.post(START.format(library_id), params=[("path", "Artist 000"), ("path", bad)])

    assert reply.status == 400, reply.text
    assert reply.json["error"]["code"] == "invalid_scope"
    assert rt.list_jobs(library_id=library_id).total == 1, "no job was created"


def test_more_than_a_hundred_paths_answer_400_and_a_hundred_are_accepted(
    db_url: str, served: tuple[scanguard.Runtime, Api, int, Path, GatedFileSystem]
) -> None:
    rt, api, library_id, _root, _fs = served

    refused = api.post(START.format(library_id), params=[("path", f"Artist {i:03d}") for i in range(101)])
    assert refused.status == 400, refused.text
    assert refused.json["error"]["details"]["field"] == "path"
    assert rt.list_jobs(library_id=library_id).total == 1

    accepted = api.post(START.format(library_id), params=[("path", f"Artist {i:03d}") for i in range(100)])
    assert accepted.status == 201, accepted.text
    assert len(accepted.json["job"]["scope"]) == 100
    assert api.wait_job(accepted.json["job"]["id"], ("completed",))["files_found"] == 200


def test_a_scoped_start_on_a_busy_library_answers_409_naming_the_job_in_the_way(
    db_url: str, served: tuple[scanguard.Runtime, Api, int, Path, GatedFileSystem]
) -> None:
    _rt, api, library_id, _root, fs = served
    fs.release.clear()
    fs.reached.clear()
    running = api.post(START.format(library_id)).json["job"]
    assert fs.reached.wait(15)

    busy = api.post(START.format(library_id), params=[("path", "Artist 000")])

    assert busy.status == 409, busy.text
    assert (busy.json["error"]["code"], busy.json["error"]["details"]["job_id"]) == (
        "library_busy",
        running["id"],
    )
    fs.release.set()
    api.wait_job(running["id"], ("completed",))


def test_the_document_declares_the_repeatable_path_and_the_job_fields() -> None:
    document = openapi_document()
    start = document["paths"]["/api/admin/scanner/safe/start/{library_id}"]["post"]
    (param,) = [p for p in start["parameters"] if p["name"] == "path"]
    assert (param["in"], param["style"], param["explode"]) == ("query", "form", True)
    assert (param["schema"]["type"], param["schema"]["maxItems"]) == ("array", 100)
    job = document["components"]["schemas"]["Job"]
    assert {"scope", "trigger", "files_moved"} <= set(job["required"])
    assert sorted(job["properties"]["trigger"]["enum"]) == sorted(scanguard.TRIGGERS)
