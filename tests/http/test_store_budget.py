"""DESIGN §11: the store seam is short. Through the real admin app, a control operation costs one write
transaction, at most one read and at most two actor asks on its critical path; a scan batch costs one
write transaction and at most one range read (none on a library that has no rows yet). The statement
counts are pinned too: a path that grows fails here, with what it now costs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import scanguard
from scanguard.http import create_app
from tests.http.conftest import TOKEN, Api
from tests.support.budget import CALLER, SCAN, Budget, Cost
from tests.support.inprocess import InProcessServer
from tests.support.trees import build_tree
from tests.support.waiting import QUIET_SAFEGUARDS, GatedFileSystem

pytestmark = pytest.mark.timeout(120)

MAX_ASKS = 2
# statements per operation (SQLite counts its explicit BEGIN; the larger of the two backends), as
# measured when the budget was set: a path that grows past these fails; one that shrinks should lower them
STATEMENTS = {"start": 11, "pause": 7, "resume": 8, "delete": 8, "batch": 5}


Served = tuple[scanguard.Runtime, Api, int, GatedFileSystem]


@pytest.fixture
def serve(
    make_config: Callable[..., scanguard.Config],
    db_url: str,
    api_for: Callable[..., Api],
    tmp_path: Path,
) -> Iterator[Callable[..., Served]]:
    """serve(files, gated=False) → a Runtime on the test's database (both backends), its admin app served
    here, a client, and a library of `files` media files added through it; with `gated`, every walk of
    the library waits at its root until the gate is released (so its scans stay silent)."""
    del db_url
    made: list[tuple[scanguard.Runtime, InProcessServer, GatedFileSystem]] = []

    def start(files: int, gated: bool = False) -> Served:
        root = tmp_path / "lib"
        build_tree(root, files, 0)
        gate = GatedFileSystem(root)
        config = make_config(
            http={"admin_token": TOKEN}, safeguards=QUIET_SAFEGUARDS, scan={"batch_size": 25}
        )
        rt = scanguard.Runtime.start(config, fs=gate if gated else None)
        server = InProcessServer(create_app(rt))
        made.append((rt, server, gate))
        api = api_for(server.url)
        library = api.post("/api/admin/libraries", json={"path": str(root)}).json["library"]
        return rt, api, library["id"], gate

    yield start
    for rt, server, gate in reversed(made):
        gate.release.set()
        server.stop()
        rt.stop()


def _check(name: str, cost: Cost, write: str) -> None:
    print(f"{name}: {cost.line()}")
    assert len(cost.asks) <= MAX_ASKS, f"{name}: asks {cost.asks}"
    assert cost.writes == [write], f"{name}: write transactions {cost.writes}"
    assert len(cost.reads) <= 1, f"{name}: reads {cost.reads}"
    assert cost.statement_total() <= STATEMENTS[name], f"{name}: statements {dict(cost.statements)}"


def test_start_pause_resume_and_delete_stay_within_the_budget(serve: Callable[..., Served]) -> None:
    rt, api, library_id, gate = serve(30, gated=True)
    budget = Budget()
    with budget.active(rt.database):
        started = api.post(f"/api/admin/scanner/safe/start/{library_id}")
        assert started.status == 201, started.text
        _check("start", budget.operation("StartScan"), "create_job")
        job_id = started.json["job"]["id"]
        assert gate.reached.wait(30), "the scan reached its walk"
        budget.reset()

        assert api.post(f"/api/admin/scanner/safe/pause/{job_id}").status == 200
        _check("pause", budget.operation("PauseScan"), "pause_job")
        budget.reset()

        again = api.post(f"/api/admin/scanner/safe/pause/{job_id}")
        assert again.status == 409
        assert again.json["error"]["code"] == "illegal_transition"
        refused = budget.operation("PauseScan")
        print(f"pause refused: {refused.line()}")
        assert (refused.asks, refused.writes, refused.reads) == ([], [], ["job_with_library"])
        budget.reset()

        gate.reached.clear()
        assert api.post(f"/api/admin/scanner/safe/resume/{job_id}").status == 200
        _check("resume", budget.operation("ResumeScan"), "resume_job")
        assert gate.reached.wait(30), "the resumed scan reached its walk"
        budget.reset()

        assert api.delete(f"/api/admin/scanner/safe/jobs/{job_id}").status == 200
        _check("delete", budget.operation("DeleteJob"), "delete_job")


def test_a_batch_is_one_write_and_a_first_scan_reads_no_ranges(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    rt, _api, library_id, _gate = serve(120)
    root = tmp_path / "lib"
    budget = Budget()
    with budget.active(rt.database):
        first = rt.start_scan(library_id)
        assert rt.wait_for_job(first.id, ("completed",), 60).files_found == 120
        scan = budget.cost(SCAN)
        batches = scan.writes.count("commit_batch")
        assert batches >= 2, f"the library was scanned in several batches: {scan.writes}"
        assert "existing_files" not in scan.reads, "a library with no rows reads no ranges"
        per_batch = scan.statements["commit_batch"] / batches
        print(f"batch (first scan): {batches} batches, {per_batch:.1f} statements each")
        assert per_batch <= STATEMENTS["batch"], f"statements per batch {per_batch}"

        budget.reset()
        for path in root.rglob("*"):
            if path.is_file():
                os.utime(path, ns=(1, 1))  # every file changed: the rescan writes them all again
        second = rt.start_scan(library_id)
        assert rt.wait_for_job(second.id, ("completed",), 60).files_changed == 120
        scan = budget.cost(SCAN)
        batches = scan.writes.count("commit_batch")
        ranges = scan.reads.count("existing_files")
        print(f"batch (rescan): {batches} batches, {ranges} range reads")
        assert 1 <= ranges <= batches, "a rescan reads at most one range per batch"


def test_the_budget_counts_what_it_claims(
    tmp_path: Path, make_config: Callable[..., scanguard.Config]
) -> None:
    """Control: the counter sees an extra read and an extra ask when a path makes them."""
    rt = scanguard.Runtime.start(make_config(safeguards=QUIET_SAFEGUARDS))
    try:
        root = tmp_path / "lib"
        root.mkdir()
        library = rt.add_library(root)
        budget = Budget()
        with budget.active(rt.database):
            rt.get_library(library.id)
            rt.get_library(library.id)
            rt.sweep()
        cost = budget.cost(CALLER)
        assert cost.reads == ["get_library", "get_library"]
        assert cost.asks == ["Sweep"]
        assert cost.statements["get_library"] >= 2
    finally:
        rt.stop()


def _check_alias(name: str, cost: Cost, write: str) -> None:
    """An alias's budget: the safe route's, plus the one statement that finds the library's active job
    (its read selects the library, then the job with its library, in one transaction)."""
    print(f"{name} (alias): {cost.line()}")
    assert len(cost.asks) <= MAX_ASKS, f"{name}: asks {cost.asks}"
    assert cost.writes == [write], f"{name}: write transactions {cost.writes}"
    assert cost.statement_total() <= STATEMENTS[name] + 1, f"{name}: statements {dict(cost.statements)}"


def test_the_alias_routes_find_the_active_job_and_its_library_in_one_read(
    serve: Callable[..., Served],
) -> None:
    """Issue 18 item 4: pause and resume by library id read the active job with its library once (they read
    the library, then the job, before); a library with no active job is a 409 from that read alone."""
    rt, api, library_id, gate = serve(30, gated=True)
    started = api.post(f"/api/admin/scanner/safe/start/{library_id}")
    assert started.status == 201, started.text
    job_id = started.json["job"]["id"]
    assert gate.reached.wait(30), "the scan reached its walk"
    budget = Budget()
    with budget.active(rt.database):
        paused = api.post(f"/api/admin/scanner/pause/{library_id}")
        assert paused.status == 200, paused.text
        assert paused.json["job"]["id"] == job_id
        cost = budget.operation("PauseScan")
        assert cost.reads == ["active_job_of"]
        _check_alias("pause", cost, "pause_job")
        budget.reset()

        gate.reached.clear()
        assert api.post(f"/api/admin/scanner/resume/{library_id}").status == 200
        cost = budget.operation("ResumeScan")
        assert cost.reads == ["active_job_of"]
        _check_alias("resume", cost, "resume_job")
        assert gate.reached.wait(30), "the resumed scan reached its walk"
        assert api.delete(f"/api/admin/scanner/safe/jobs/{job_id}").status == 200
        budget.reset()

        idle = api.post(f"/api/admin/scanner/pause/{library_id}")
        assert idle.status == 409
        assert idle.json["error"]["code"] == "no_active_job"
        cost = budget.cost(CALLER)
        assert (cost.asks, cost.writes, cost.reads) == ([], [], ["active_job_of"])
