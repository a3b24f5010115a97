"""Event families, one filter for every reader: the Runtime, its awaitable twin's reads and the CLI."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import scanguard
from tests.e2e.test_cli_kill import child_env, scanguard_command

pytestmark = pytest.mark.timeout(60)


def _scanned_with_file_events(tmp_path: Path, rt: scanguard.Runtime) -> int:
    root = tmp_path / "lib"
    root.mkdir()
    (root / "a.mp3").write_bytes(b"x")
    library = rt.add_library(root)
    job = rt.wait_for_job(rt.start_scan(library.id).id, timeout=30)
    for n in range(5):  # per-file events, as a scan that quarantines or moves files records them
        rt.store.record_event("file.quarantined", library.id, job.id, path=f"bad{n}.mp3")
    return job.id


def test_the_job_family_leaves_per_file_events_out_and_keeps_every_job_event(
    db_url: str, tmp_path: Path, runtime_factory: Callable[..., scanguard.Runtime]
) -> None:
    """`family="job"` is a job's life without its files' events; `family="file"` is only those; both with a
    kind inside the family narrow it, and a kind outside it gives nothing."""
    rt = runtime_factory()
    job_id = _scanned_with_file_events(tmp_path, rt)
    everything = rt.events(job_id=job_id)
    jobs = rt.events(job_id=job_id, family="job")
    assert [e.kind for e in jobs] == [e.kind for e in everything if not e.kind.startswith("file.")]
    assert [e.kind for e in jobs][:1] == ["job.started"]
    assert len(rt.events(job_id=job_id, family="file")) == 5
    assert [e.kind for e in rt.events(family="job", kind="job.completed")] == ["job.completed"]
    assert rt.events(family="job", kind="file.") == ()
    with pytest.raises(scanguard.BadRequest, match="family"):
        rt.events(family="everything")


def test_scanguard_events_family_prints_only_that_family(
    sqlite_url: str,
    tmp_path: Path,
    runtime_factory: Callable[..., scanguard.Runtime],
    make_config: Callable[..., scanguard.Config],
) -> None:
    """The command line takes the same family: `scanguard events --family job` prints no file event."""
    rt = runtime_factory(make_config(database={"url": sqlite_url}))
    _scanned_with_file_events(tmp_path, rt)
    out = subprocess.run(
        [*scanguard_command(), "events", "--database", sqlite_url, "--family", "job"],
        env=child_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    kinds = [json.loads(line)["kind"] for line in out.splitlines()]
    assert kinds[0] == "job.started"
    assert "job.completed" in kinds
    assert not [k for k in kinds if k.startswith("file.")]
