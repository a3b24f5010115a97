"""Issue 7: a host script embeds scanguard with named processors — no main guard needed, tags read in workers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.test_cli_kill import child_env
from tests.support.media import build_tagged_library, missing_reason

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.skipif(bool(missing_reason()), reason=missing_reason() or "tools present"),
]


def test_a_host_script_without_a_main_guard_runs_once_and_gets_its_tags(tmp_path: Path) -> None:
    lib = build_tagged_library(tmp_path / "library")
    runs = tmp_path / "runs.log"
    script = tmp_path / "host.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json
            from scanguard import Runtime, load_config

            with open({str(runs)!r}, "a") as fh:  # module level, no main guard: must run once
                fh.write("ran\\n")
            cfg = load_config(database={{"url": {f"sqlite:///{tmp_path / 'host.db'}"!r}}})
            rt = Runtime.start(cfg, processors=["audio_tags", "image_info"])
            try:
                lib = rt.add_library({str(lib.root)!r}, kind="music")
                job = rt.wait_for_job(rt.start_scan(lib.id).id)
                files = rt.list_files(lib.id, limit=100).items
                print(json.dumps({{"status": job.status, "meta": {{f.path: f.meta for f in files}}}}))
            finally:
                rt.stop()
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        env=child_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert runs.read_text().splitlines() == ["ran"], "the workers did not re-run the host's script"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["status"] == "completed"
    for rel, exp in lib.of_type("audio").items():
        assert out["meta"][rel]["audio_tags"]["title"] == exp["tags"]["title"]
    for rel, exp in lib.of_type("image").items():
        assert out["meta"][rel]["image_info"]["width"] == exp["width"]
    assert out["meta"][lib.corrupt] is None, "the corrupt file has an error, not metadata"
