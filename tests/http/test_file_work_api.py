"""Issue 7 through `scanguard serve`: a tag-reading scan with poison files, failures listed over HTTP."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.http.conftest import Api, ServerProcess, wait_until
from tests.support.hostproc import NAME as HOST
from tests.support.hostproc import POISON, add_poison, alive, pids
from tests.support.media import build_tagged_library, missing_reason

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(150),
    pytest.mark.skipif(bool(missing_reason()), reason=missing_reason() or "tools present"),
]


def test_serve_reads_tags_in_workers_survives_every_poison_file_and_lists_the_failures(
    tmp_path: Path,
    db_url: str,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
) -> None:
    lib = build_tagged_library(tmp_path / "library")
    add_poison(lib.root, next(iter(lib.of_type("audio"))))
    server = start_server(
        db_url,
        env={
            "SCANGUARD_SCAN_PROCESSORS": f"audio_tags,image_info,video_probe,{HOST}",
            "SCANGUARD_SCAN_FILE_TIMEOUT": "1s",
            "SCANGUARD_SCAN_WORKER_MEMORY_LIMIT": "1024",
            "SCANGUARD_SAFEGUARDS_STALL_THRESHOLD": "10",  # not a stall test: a loaded machine may pause for 1 s
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        },
    )
    api = api_for(server)
    library = api.post("/api/admin/libraries", json={"path": str(lib.root)}).json["library"]["id"]
    assert api.post(f"/api/admin/scanner/safe/start/{library}?retry_failed=maybe").status == 400
    job = api.post(f"/api/admin/scanner/safe/start/{library}").json["job"]
    assert job["retry_failed"] is False
    done = api.wait_job(job["id"], ("completed", "failed", "paused"), timeout=90)

    assert done["status"] == "completed", done
    assert done["errors"] == len(POISON) + 1
    assert server.proc.poll() is None, "the service outlived every crashed worker"
    assert api.all_files(library) == {*lib.paths, *POISON}
    failed = api.get(f"/api/admin/libraries/{library}/files?errors=true&limit=100").json
    assert failed["total"] == len(POISON) + 1
    errors = {f["path"]: f["error"] for f in failed["files"]}
    assert sorted(errors) == sorted([*POISON, lib.corrupt])
    for rel, (_, says) in POISON.items():
        assert says in errors[rel], (rel, errors[rel])
    everything = api.get(f"/api/admin/libraries/{library}/files?limit=100").json["files"]
    clip = next(f for f in everything if f["media_type"] == "video")
    assert clip["meta"]["video_probe"]["video_codec"] == "h264"
    metrics = api.get("/metrics").text
    assert 'scanguard_files_quarantined_total{reason="signal"} 1.0' in metrics
    assert 'scanguard_files_quarantined_total{reason="timeout"} 1.0' in metrics

    status = api.get("/api/admin/scanner/safeguards/status").json["workers"]
    assert status["processors"] == ["audio_tags", "image_info", "video_probe", HOST]
    assert status["alive"] is True
    assert status["files_quarantined"] == {"timeout": 1, "signal": 1, "exit": 1, "error": 3}

    workers = pids(lib.root)
    assert workers, "the host processor ran in worker processes"
    assert os.getpid() not in workers
    assert server.proc.pid not in workers
    assert server.terminate() == 0
    wait_until(lambda: not alive(workers), 15, "the workers to stop with the service")
