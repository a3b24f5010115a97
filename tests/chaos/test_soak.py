"""The chaos soak (DESIGN §8): three `scanguard serve` on one throwaway PostgreSQL, libraries scanning, and
at random kill -9, SIGSTOP/SIGCONT, SIGTERM + restart, pg_terminate_backend, a PostgreSQL restart and admin
storms against random instances, and admin calls against random instances all along.

Checked all along: never two active jobs for one library; no job `running` without a live owner for
longer than lease_ttl + orphaned_job_threshold + 2 watchdog ticks (plus a little slack for a loaded
machine, and not while the database itself is down); no 5xx but 503 (the documented answer while the
store is unreachable or an instance is stopping). Checked at the end, once every library had a final scan:
each library's files equal the filesystem, no duplicate paths, counters consistent. It prints how many
faults of each kind were injected and survived.

About 60 s by default; `make soak` (SOAK_SECONDS=600 by default, or SCANGUARD_SOAK_SECONDS) runs it longer; SCANGUARD_SOAK_SEED
replays a run.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.safeguards_support import assert_database_valid, indexed_paths
from tests.support import postgres
from tests.support.db import db_rows
from tests.support.instances import ApiError, ServeProcess, serve_settings
from tests.support.trees import build_tree, expected_media
from tests.support.waiting import wait_for

SOAK_SECONDS = float(os.environ.get("SCANGUARD_SOAK_SECONDS", "60"))
SEED = int(os.environ.get("SCANGUARD_SOAK_SEED", str(int(time.time()))))
INSTANCES = 3
LIBRARIES = 4
FILES = 300
LEASE_TTL, ORPHANED, TICK = 3.0, 2.0, 0.5
BOUND = LEASE_TTL + ORPHANED + 2 * TICK
SLACK = 4.0  # a 2-core machine shared with PostgreSQL and three instances is slow to schedule
FAULTS = ("kill9", "sigstop", "sigterm", "pg_terminate", "pg_restart", "storm")

pytestmark = [pytest.mark.timeout(int(SOAK_SECONDS) + 300), pytest.mark.slow, pytest.mark.postgres]


@dataclass
class Node:
    """One instance slot: its process, and whether it is up, frozen or down (and since when)."""

    server: ServeProcess
    state: str = "up"
    since: float = field(default_factory=time.monotonic)
    thaw_at: float | None = None


@dataclass
class Violations:
    """What the checker found; the test fails if any list is non-empty."""

    double_active: list[Any] = field(default_factory=list)
    ownerless: list[Any] = field(default_factory=list)
    server_errors: list[Any] = field(default_factory=list)


class Soak:
    """Owns the instances, the fault schedule, the invariant checker and the tallies of one soak run."""

    def __init__(self, url: str, pg: postgres.ThrowawayServer, tmp_path: Path, rng: random.Random) -> None:
        self.url = url
        self.pg = pg
        self.tmp_path = tmp_path
        self.rng = rng
        self.settings = serve_settings(
            SCANGUARD_SCAN_BATCH_SIZE="3",
            SCANGUARD_SAFEGUARDS_LEASE_TTL=str(LEASE_TTL),
            SCANGUARD_SAFEGUARDS_ORPHANED_JOB_THRESHOLD=str(ORPHANED),
            SCANGUARD_SAFEGUARDS_WATCHDOG_INTERVAL=str(TICK),
            SCANGUARD_SAFEGUARDS_RETRY_INTERVAL="0.2",
            SCANGUARD_SAFEGUARDS_SHUTDOWN_TIMEOUT="8",
            SCANGUARD_LOG_LEVEL="warning",
        )
        self.nodes: list[Node] = []
        self.injected: Counter[str] = Counter()
        self.survived: Counter[str] = Counter()
        self.violations = Violations()
        self.statuses: Counter[int] = Counter()
        self.db_down_until = 0.0
        self.none_up_until = 0.0
        self._stop = threading.Event()
        self._stop_traffic = threading.Event()
        self._lock = threading.Lock()
        self._ownerless_since: dict[int, float] = {}
        self.checks = 0

    # ---- instances ------------------------------------------------------------------------------

    def start_all(self) -> None:
        for i in range(INSTANCES):
            server = ServeProcess.spawn(f"i{i}", self.url, self.tmp_path, self.settings)
            self.nodes.append(Node(server))
        for node in self.nodes:
            node.server.wait_listening(90)

    def up(self) -> list[Node]:
        with self._lock:
            return [n for n in self.nodes if n.state == "up" and n.server.base]

    def live_pids(self) -> set[int]:
        with self._lock:
            return {n.server.pid for n in self.nodes if n.state == "up" and n.server.alive()}

    def _set(self, node: Node, state: str) -> None:
        with self._lock:
            node.state, node.since = state, time.monotonic()
            if not any(n.state == "up" for n in self.nodes):
                self.none_up_until = float("inf")
            elif self.none_up_until == float("inf"):
                self.none_up_until = time.monotonic()

    def restart(self, node: Node) -> bool:
        node.server.start()
        try:
            node.server.wait_listening(90)
        except AssertionError:
            return False
        self._set(node, "up")
        return self.ready(node)

    def ready(self, node: Node, timeout: float = 30) -> bool:
        def answers() -> bool:
            with contextlib.suppress(ApiError, OSError):
                return node.server.call("GET", "/readyz", timeout=5)["status"] == "ready"
            return False

        try:
            wait_for(answers, timeout, f"{node.server.name} to be ready", interval=0.2)
        except AssertionError:
            return False
        return True

    def thaw_due(self, force: bool = False) -> None:
        now = time.monotonic()
        for node in list(self.nodes):
            if node.state == "frozen" and node.thaw_at is not None and (force or now >= node.thaw_at):
                node.server.signal(signal.SIGCONT)
                node.thaw_at = None
                self._set(node, "up")
                if self.ready(node):
                    self.survived["sigstop"] += 1

    # ---- faults ---------------------------------------------------------------------------------

    def inject(self, fault: str) -> None:
        self.injected[fault] += 1
        if getattr(self, f"_{fault}")():
            self.survived[fault] += 1

    def _victim(self) -> Node | None:
        candidates = self.up()
        return self.rng.choice(candidates) if candidates else None

    def _kill9(self) -> bool:
        node = self._victim()
        if node is None:
            return True
        node.server.signal(signal.SIGKILL)
        node.server.wait_exit(10)
        self._set(node, "down")
        if len(self.up()) > 0 and self.rng.random() < 0.5:
            self.run_for(self.rng.uniform(0.5, BOUND + 1))  # sometimes let the others take over first
        return self.restart(node)

    def _sigstop(self) -> bool | None:
        node = self._victim()
        if node is None:
            return True
        node.server.signal(signal.SIGSTOP)
        self._set(node, "frozen")
        node.thaw_at = time.monotonic() + self.rng.uniform(0.5, BOUND + 3)
        return None  # counted as survived when it is thawed and answers again

    def _sigterm(self) -> bool:
        node = self._victim()
        if node is None:
            return True
        node.server.signal(signal.SIGTERM)
        self._set(node, "down")
        try:
            code = node.server.wait_exit(30)
        except Exception:  # noqa: BLE001 - a hung shutdown is a fault not survived
            node.server.stop()
            code = -1
        return self.restart(node) and code == 0

    def _pg_terminate(self) -> bool:
        with contextlib.suppress(Exception):
            db_rows(
                self.url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
        return all(self.ready(n) for n in self.up())

    def _pg_restart(self) -> bool:
        self.db_down_until = float("inf")
        try:
            self.pg.restart(self.rng.choice(("fast", "immediate")))
        finally:
            self.db_down_until = time.monotonic()
        return all(self.ready(n, 60) for n in self.up())

    def _storm(self) -> bool:
        nodes = self.up()
        if not nodes:
            return True
        libraries, jobs = self._targets()
        rng = random.Random(self.rng.random())  # the storm's threads draw from their own generator
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda _: self._random_call(rng, nodes, libraries, jobs), range(24)))
        return True

    def _targets(self) -> tuple[list[int], list[int]]:
        libraries = [int(i) for (i,) in db_rows(self.url, "SELECT id FROM libraries")]
        jobs = [int(i) for (i,) in db_rows(self.url, "SELECT id FROM scan_jobs WHERE status <> 'completed'")]
        return libraries, jobs

    def _random_call(
        self, rng: random.Random, nodes: list[Node], libraries: list[int], jobs: list[int]
    ) -> None:
        node = rng.choice(nodes)
        action = rng.choice(("start", "start", "pause", "resume", "delete", "status"))
        target = rng.choice(jobs) if jobs else 1
        path = {
            "start": ("POST", f"/api/admin/scanner/safe/start/{rng.choice(libraries or [1])}"),
            "pause": ("POST", f"/api/admin/scanner/safe/pause/{target}"),
            "resume": ("POST", f"/api/admin/scanner/safe/resume/{target}"),
            "delete": ("DELETE", f"/api/admin/scanner/safe/jobs/{target}"),
            "status": ("GET", "/api/admin/instances"),
        }[action]
        self.request(node, *path)

    def traffic_forever(self) -> None:
        """Admin calls all along, against random instances, while the faults happen."""
        rng = random.Random(SEED + 1)
        targets: tuple[list[int], list[int]] = ([], [])
        while not self._stop_traffic.wait(rng.uniform(0.1, 0.4)):
            nodes = self.up()
            with contextlib.suppress(Exception):  # the database is down (a fault): the last targets do
                targets = self._targets()
            if nodes and targets[0]:
                self._random_call(rng, nodes, *targets)

    def request(self, node: Node, method: str, path: str) -> None:
        """One admin call; statuses are tallied, a 5xx other than 503 is a violation."""
        try:
            node.server.call(method, path, timeout=30)
            status = 200
        except ApiError as exc:
            status = exc.status
            if status >= 500 and status != 503:
                self.violations.server_errors.append((method, path, status, exc.body))
        except OSError:
            status = 0  # the instance went away meanwhile (a concurrent fault): not an answer
        with self._lock:
            self.statuses[status] += 1

    def run_faults(self, libraries: list[int], seconds: float) -> None:
        """Every kind of fault at least once, then at random, a second or three apart, with new scans."""
        plan = list(FAULTS)
        self.rng.shuffle(plan)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.inject(plan.pop() if plan else self.rng.choice(FAULTS))
            self.run_for(self.rng.uniform(1.0, 3.0))
            nodes = self.up()
            if nodes and self.rng.random() < 0.3:  # keep scans coming
                library_id = self.rng.choice(libraries)
                self.request(self.rng.choice(nodes), "POST", f"/api/admin/scanner/safe/start/{library_id}")

    def run_for(self, seconds: float) -> None:
        """Let the system run for a while, thawing what is due (a deadline wait, not a bare sleep)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.thaw_due()
            self._stop.wait(min(0.1, max(0.0, deadline - time.monotonic())))

    # ---- the invariant checker --------------------------------------------------------------------

    def check_forever(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self.check_once()
            except Exception:  # noqa: BLE001, S112 - the database is down (a fault): check again later
                continue

    def check_once(self) -> None:
        double = db_rows(
            self.url,
            "SELECT library_id, COUNT(*) FROM scan_jobs WHERE status IN ('pending', 'running', 'paused') "
            "GROUP BY library_id HAVING COUNT(*) > 1",
        )
        if double:
            self.violations.double_active.append(double)
        running = db_rows(self.url, "SELECT id, owner FROM scan_jobs WHERE status = 'running'")
        now = time.monotonic()
        live = self.live_pids()
        quiet_since = max(self.db_down_until, self.none_up_until)
        seen: set[int] = set()
        for job_id, owner in running:
            pid = int(str(owner).rsplit(":", 3)[1]) if owner else -1
            if pid in live:
                continue
            seen.add(job_id)
            first = self._ownerless_since.setdefault(job_id, now)
            since = max(first, quiet_since)
            if now - since > BOUND + SLACK:
                self.violations.ownerless.append((job_id, owner, round(now - since, 1)))
                self._ownerless_since[job_id] = now  # report each stretch once
        for job_id in set(self._ownerless_since) - seen:
            del self._ownerless_since[job_id]
        self.checks += 1

    def stop_checking(self) -> None:
        self._stop.set()

    def stop_traffic(self) -> None:
        self._stop_traffic.set()


def _final_scans(soak: Soak, roots: dict[int, Path]) -> None:
    """Every library ends with a completed scan: resume what is paused, start what has nothing active."""
    node = soak.up()[0]

    def settled() -> bool:
        active = db_rows(
            soak.url, "SELECT id, status FROM scan_jobs WHERE status IN ('pending', 'running', 'paused')"
        )
        for job_id, status in active:
            if status == "paused":
                with contextlib.suppress(ApiError):
                    node.server.call("POST", f"/api/admin/scanner/safe/resume/{job_id}")
        return not active

    wait_for(settled, 120, "every active job to finish", interval=0.5)
    for library_id in roots:
        job = node.server.call("POST", f"/api/admin/scanner/safe/start/{library_id}")["job"]
        wait_for(
            lambda job_id=job["id"]: (
                db_rows(soak.url, f"SELECT status FROM scan_jobs WHERE id = {job_id}")
                in ([("completed",)], [("failed",)])
            ),
            120,
            f"the final scan of library {library_id}",
            interval=0.2,
        )


def _assert_index_exact(url: str, roots: dict[int, Path]) -> None:
    """Each library's rows are its tree's media files: none missing, none extra, none twice."""
    for library_id, root in roots.items():
        paths = indexed_paths(url, library_id)
        assert len(paths) == len(set(paths)), f"library {library_id}: duplicate paths"
        assert paths == sorted(expected_media(root)), f"library {library_id}: the index is not the tree"
        missing = db_rows(
            url,
            f"SELECT COUNT(*) FROM media_files WHERE library_id = {library_id} AND missing_since IS NOT NULL",
        )
        assert missing == [(0,)], f"library {library_id}: files marked missing that are there"
    assert_database_valid(url)


def test_three_instances_survive_kills_freezes_restarts_database_faults_and_admin_storms(
    throwaway_pg: postgres.ThrowawayServer, tmp_path: Path
) -> None:
    """Faults at random for SOAK_SECONDS; the invariants hold throughout and the index is exact at the end."""
    rng = random.Random(SEED)
    url = postgres.create_database(throwaway_pg.admin_url)
    soak = Soak(url, throwaway_pg, tmp_path, rng)
    checker = threading.Thread(target=soak.check_forever, name="soak-checker", daemon=True)
    traffic = threading.Thread(target=soak.traffic_forever, name="soak-traffic", daemon=True)
    roots: dict[int, Path] = {}
    try:
        soak.start_all()
        first = soak.nodes[0]
        for n in range(LIBRARIES):
            root = tmp_path / f"lib{n}"
            build_tree(root, FILES, 5)
            library = first.server.call("POST", "/api/admin/libraries", {"path": str(root)})["library"]
            roots[library["id"]] = root
            soak.request(rng.choice(soak.up()), "POST", f"/api/admin/scanner/safe/start/{library['id']}")
        checker.start()
        traffic.start()
        soak.run_faults(list(roots), SOAK_SECONDS)
        soak.stop_traffic()
        soak.thaw_due(force=True)
        for node in soak.nodes:
            if node.state == "down" or not node.server.alive():
                soak.restart(node)
        _final_scans(soak, roots)
        soak.check_once()
    finally:
        soak.stop_traffic()
        soak.stop_checking()
        checker.join(5)
        traffic.join(35)
        for node in soak.nodes:
            node.server.stop()

    try:
        _assert_index_exact(url, roots)
    finally:
        postgres.drop_database(throwaway_pg.admin_url, url)

    report = (
        f"soak seed={SEED} seconds={SOAK_SECONDS:g} checks={soak.checks} "
        f"injected={dict(soak.injected)} survived={dict(soak.survived)} statuses={dict(soak.statuses)}"
    )
    print(report)
    assert soak.violations == Violations(), f"{report}\n{soak.violations}"
    unsurvived = {
        k: soak.injected[k] - soak.survived[k] for k in soak.injected if soak.survived[k] < soak.injected[k]
    }
    assert not unsurvived, f"faults not survived: {unsurvived}\n{report}"
