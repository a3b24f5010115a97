"""A real ENOSPC from inotify_add_watch: `scanguard watch` in a user namespace of its own whose inotify
watch limit is lowered to 3 (the host's limit and every other process are untouched), then raised."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from scanguard.exit_codes import EXIT_OK
from tests.e2e.test_cli_kill import child_env, scanguard_command
from tests.e2e.test_cli_watch import lines_of, next_line
from tests.support.db import db_rows
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

LIMIT = "/proc/sys/user/max_inotify_watches"  # per user namespace (Linux >= 5.11)


def _namespaces_work() -> str | None:
    """Why this test cannot run here, or None."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "needs unshare and nsenter (util-linux)"
    probe = subprocess.run(
        ["unshare", "-U", "-r", "sh", "-c", f"echo 3 > {LIMIT}"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        return f"cannot lower the inotify watch limit in a user namespace: {probe.stderr.strip()[:200]}"
    return None


def test_watches_exhausted_for_real_poll_with_watch_limit_and_recover_when_the_limit_is_raised(
    sqlite_url: str, tmp_path: Path
) -> None:
    reason = _namespaces_work()
    if reason is not None:
        pytest.skip(reason)
    root = tmp_path / "lib"
    for i in range(5):  # six folders with the root: more than 3 watches
        (root / f"f{i}").mkdir(parents=True)
        (root / f"f{i}" / "a.flac").write_bytes(b"a")
    env = child_env(
        tmp_path,
        SCANGUARD_WATCH_SETTLE="0.2",
        SCANGUARD_WATCH_RESCAN_INTERVAL="0",
        SCANGUARD_WATCH_REARM_INTERVAL="0.3",
        SCANGUARD_WATCH_REARM_MAX_INTERVAL="0.6",
    )
    command = [*scanguard_command(), "watch", str(root), "--database", sqlite_url]
    proc = subprocess.Popen(
        ["unshare", "-U", "-r", "sh", "-c", f'echo 3 > {LIMIT} && exec "$@"', "sh", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines, reader = lines_of(proc)
    try:
        degraded = next_line(lines, "watch.degraded")
        assert "watch_limit" in degraded
        assert "fs.inotify.max_user_watches" in degraded
        [(state, why, message)] = db_rows(
            sqlite_url, "SELECT watch_state, watch_reason, watch_message FROM libraries"
        )
        assert (state, why) == ("polling", "watch_limit")
        assert "fs.inotify.max_user_watches" in message
        raised = subprocess.run(
            ["nsenter", "-U", "-t", str(proc.pid), "sh", "-c", f"echo 1000 > {LIMIT}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert raised.returncode == 0, raised.stderr
        next_line(lines, "watch.recovered")
        wait_for(
            lambda: (
                db_rows(sqlite_url, "SELECT watch_state, watch_reason FROM libraries") == [("watching", None)]
            ),
            10,
            "watching recorded",
        )
        kinds = [
            (kind, json.loads(data).get("reason"))
            for kind, data in db_rows(
                sqlite_url, "SELECT kind, data FROM events WHERE kind LIKE 'watch.%' ORDER BY id"
            )
        ]
        assert kinds == [("watch.degraded", "watch_limit"), ("watch.recovered", "watch_limit")]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == EXIT_OK
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(10)
        assert proc.stdout is not None
        proc.stdout.close()
