"""Issue 7 through the command line: tag-reading scans that survive poison files and `kill -9`."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.test_cli_kill import child_env, committed_count, scanguard_command
from tests.support.db import db_rows
from tests.support.hostproc import NAME as HOST
from tests.support.hostproc import POISON, add_poison, alive, pids, read_calls
from tests.support.media import build_bulk_audio, build_tagged_library, bulk_path, bulk_tags, missing_reason
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(bool(missing_reason()), reason=missing_reason() or "tools present"),
]
SEED = int(os.environ.get("SCANGUARD_TEST_SEED", "20261130"))
N_FILES = 900
KILLS = 4
BATCH = 20


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = child_env(tmp_path, **settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _assert_every_file_tagged(db_url: str, seed: str) -> None:
    """The exact set of bulk files, each once, each with the tags it was written with."""
    rows = db_rows(db_url, "SELECT path, error, meta FROM media_files")
    paths = [r[0] for r in rows]
    assert len(paths) == len(set(paths)), f"duplicate rows: {seed}"
    assert set(paths) == {bulk_path(i) for i in range(N_FILES)}, seed
    for path, error, meta in rows:
        assert error is None, (path, error)
        tags = (json.loads(meta) if isinstance(meta, str) else meta)["audio_tags"]
        i = int(tags["title"].split()[-1])
        assert path == bulk_path(i), (path, tags)
        assert (tags["artist"], tags["album"], tags["genre"]) == (
            bulk_tags(i)["artist"],
            bulk_tags(i)["album"],
            bulk_tags(i)["genre"],
        ), path


def test_kill_9_during_a_tag_reading_scan_loses_no_file_and_no_tag_and_reprocesses_only_what_was_in_flight(
    db_url: str, tmp_path: Path
) -> None:
    """Killed at seeded moments while workers read tags; reruns until done: the exact set, each file with
    its tags, no file processed more than twice, and no worker outlives the process it served."""
    rng = random.Random(SEED)
    seed = f"seed={SEED} (rerun with SCANGUARD_TEST_SEED={SEED})"
    root = tmp_path / "lib"
    build_bulk_audio(root, N_FILES)
    env = _env(
        tmp_path,
        SCANGUARD_SCAN_BATCH_SIZE=str(BATCH),
        SCANGUARD_SCAN_PROCESSORS=f"audio_tags,{HOST}",
        SCANGUARD_SCAN_WORKERS="2",
    )
    command = [*scanguard_command(), "scan", str(root), "--database", db_url, "--no-progress"]
    in_flight: set[str] = set()  # processed before a kill but not committed by it
    kills = 0
    code = None
    for run in range(KILLS + 3):
        seen = set(read_calls(root))
        # each kill waits until the scan has committed past every file processed so far, at a random point
        target = max(committed_count(db_url), len(seen)) + BATCH + rng.randrange(N_FILES // (KILLS + 2))
        log = tmp_path / f"run-{run}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
            try:
                if kills < KILLS and target < N_FILES - BATCH:
                    wait_for(
                        lambda p=proc, t=target: p.poll() is not None or committed_count(db_url) >= t,
                        90,
                        f"run {run} to commit {target} files",
                    )
                    if proc.poll() is None:
                        os.kill(proc.pid, signal.SIGKILL)
                        assert proc.wait(timeout=10) == -signal.SIGKILL
                        kills += 1
                        # every worker that ever ran dies with it (and logs nothing more)
                        wait_for(lambda: not alive(pids(root)), 15, f"the workers to die with run {run}")
                        committed = {p for (p,) in db_rows(db_url, "SELECT path FROM media_files")}
                        in_flight |= set(read_calls(root)) - committed
                        continue
                code = proc.wait(timeout=180)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
        assert code == 0, f"run {run} exited {code}: {seed}\n{log.read_text()[-3000:]}"
        break
    assert code == 0, f"no run completed: {seed}"
    assert kills >= 2, f"only {kills} kills landed: {seed}"

    _assert_every_file_tagged(db_url, seed)
    calls = Counter(read_calls(root))
    assert max(calls.values()) <= 2, f"a file processed more than twice: {calls.most_common(3)}: {seed}"
    twice = {p for p, n in calls.items() if n == 2}
    assert twice <= in_flight, f"re-processed but never in flight at a kill: {sorted(twice - in_flight)[:5]}"
    (status,) = db_rows(db_url, "SELECT status FROM scan_jobs")[0]
    assert status == "completed"


def test_scanguard_scan_with_poison_files_exits_0_and_scanguard_files_lists_each_failure(
    tmp_path: Path,
) -> None:
    """The README's tag-reading scan: every file indexed, each bad one listed with why, exit 0."""
    lib = build_tagged_library(tmp_path / "library")
    add_poison(lib.root, next(iter(lib.of_type("audio"))))
    url = f"sqlite:///{tmp_path / 'tags.db'}"
    env = _env(tmp_path, SCANGUARD_SCAN_FILE_TIMEOUT="1s", SCANGUARD_SCAN_WORKER_MEMORY_LIMIT="1024")
    processors = f"audio_tags,image_info,video_probe,{HOST}"
    scan = [*scanguard_command(), "scan", str(lib.root), "--database", url, "--no-progress"]
    done = subprocess.run(
        [*scan, "--processors", processors], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{len(POISON) + 1} errors" in done.stderr
    assert "scanguard files --library 1 --errors" in done.stderr

    files = [*scanguard_command(), "files", "--database", url]
    listed = subprocess.run(
        [*files, "--errors"], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    failures = dict(line.split("\t")[1:] for line in listed.stdout.splitlines())
    assert sorted(failures) == sorted([*POISON, lib.corrupt])
    for rel, (_, says) in POISON.items():
        assert says in failures[rel], (rel, failures[rel])
    every = subprocess.run(
        [*files, "--library", "1", "--json"], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    indexed = {json.loads(line)["path"]: json.loads(line) for line in every.stdout.splitlines()}
    assert sorted(indexed) == sorted([*lib.paths, *POISON])
    some = next(iter(lib.of_type("audio")))
    assert indexed[some]["meta"]["audio_tags"]["title"] == lib.expected[some]["tags"]["title"]

    calls_before = len(read_calls(lib.root))
    again = subprocess.run(
        [*scan, "--processors", processors], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(read_calls(lib.root)) == calls_before, "the unchanged rescan did not wait for the hang again"
    retried = subprocess.run(
        [*scan, "--processors", processors, "--retry-failed"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert retried.returncode == 0, retried.stderr[-3000:]
    assert set(read_calls(lib.root)[calls_before:]) == {*POISON, lib.corrupt}


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("SCANGUARD_SCAN_PROCESSORS", "audio_tagz", "scan.processors: unknown processor 'audio_tagz'"),
        (
            "SCANGUARD_SCAN_PROCESSORS",
            "no_such_module:read",
            "scan.processors: 'no_such_module:read' does not import",
        ),
        ("SCANGUARD_SCAN_WORKERS", "-1", "scan.workers must be >= 0"),
        ("SCANGUARD_SCAN_FILE_TIMEOUT", "0", "scan.file_timeout must be > 0"),
    ],
)
def test_bad_per_file_settings_stop_scanguard_before_anything_starts(
    tmp_path: Path, setting: str, value: str, says: str
) -> None:
    """A clear error naming the key, a non-zero exit, and no database made."""
    db = tmp_path / "never.db"
    root = tmp_path / "lib"
    root.mkdir()
    env = _env(tmp_path, **{setting: value, "SCANGUARD_SCAN_PROCESSORS": "audio_tags"} | {setting: value})
    for command in (["scan", str(root)], ["serve", "--port", "0"]):
        done = subprocess.run(
            [*scanguard_command(), *command, "--database", f"sqlite:///{db}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode != 0, (command, done.stdout, done.stderr)
        assert says in done.stderr, (command, done.stderr[-2000:])
        assert not db.exists(), f"{command[0]} made the database before failing"


def test_scanguard_files_piped_into_head_stops_quietly(tmp_path: Path) -> None:
    """`scanguard files --json | head -1`, as the README shows it: one line, no traceback, exit 0."""
    root = tmp_path / "lib"
    build_bulk_audio(root, 300)
    url = f"sqlite:///{tmp_path / 'pipe.db'}"
    env = _env(tmp_path)
    scan = [*scanguard_command(), "scan", str(root), "--database", url, "--no-progress"]
    subprocess.run(scan, env=env, capture_output=True, timeout=60, check=True)
    files = subprocess.Popen(
        [*scanguard_command(), "files", "--library", "1", "--json", "--database", url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert files.stdout is not None
    first = files.stdout.readline()
    files.stdout.close()  # what `head -1` does after its line
    _, err = files.communicate(timeout=60)
    assert json.loads(first)["path"] == bulk_path(0)
    assert files.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err
