"""The chaos soak (DESIGN §8): three `scanguard serve` on one throwaway PostgreSQL, libraries scanning, and
at random kill -9, SIGSTOP/SIGCONT, SIGTERM + restart, pg_terminate_backend, a PostgreSQL restart and admin
storms against random instances, and admin calls against random instances all along.

Checked all along: never two active jobs for one library; no job `running` without a live owner for
longer than lease_ttl + orphaned_job_threshold + 2 watchdog ticks (plus a little slack for a loaded
machine, and not while the database itself is down); no 5xx but 503 (the documented answer while the
store is unreachable or an instance is stopping); every event committed by one live instance on every
other live instance's /api/admin/events/stream within 2 s (tests/chaos/propagation.py), and after every
fault a probe event (a library added and removed) written on one live instance and awaited on the others.
Checked at the end, once every library had a final scan: each library's files equal the filesystem, no
duplicate paths, counters consistent, every event in the table on every stream. It prints how many faults
of each kind were injected and survived, and the events' lag (p50/p99/max, by the fault before them).

Whatever happens, the soak's teardown kills every process it spawned, with its process group, and fails if
one survives (tests/chaos/test_soak_teardown.py proves it on a soak that fails at once).

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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.propagation import BOUND as PROPAGATION_BOUND
from tests.chaos.propagation import Miss, Propagation
from tests.chaos.taps import Seen, StreamTaps, TapRecord
from tests.integration.safeguards_support import assert_database_valid, indexed_paths
from tests.support import postgres
from tests.support.db import db_rows
from tests.support.instances import TOKEN, ApiError, ServeProcess, serve_settings
from tests.support.reaping import SpawnedProcesses
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

    slot: int
    server: ServeProcess
    state: str = "up"
    since: float = field(default_factory=time.monotonic)
    thaw_at: float | None = None
    started: float = field(default_factory=time.time)  # wall clock, when its current process was started


@dataclass
class Violations:
    """What the checker found; the test fails if any list is non-empty."""

    double_active: list[Any] = field(default_factory=list)
    ownerless: list[Any] = field(default_factory=list)
    server_errors: list[Any] = field(default_factory=list)
    propagation: list[Miss] = field(default_factory=list)
    streams: list[Any] = field(default_factory=list)


class Soak:
    """Owns the instances, the fault schedule, the invariant checker and the tallies of one soak run."""

    def __init__(self, url: str, pg: postgres.ThrowawayServer, tmp_path: Path, rng: random.Random) -> None:
        self.url = url
        self.pg = pg
        self.tmp_path = tmp_path
        self.rng = rng
        self.spawned = SpawnedProcesses()
        self.settings = serve_settings(
            **self.spawned.env(),
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
        self.taps = StreamTaps([self._base_of(i) for i in range(INSTANCES)], TOKEN)
        self.propagation = Propagation(self.taps, [f"i{i}" for i in range(INSTANCES)])
        self.probes = Counter[str]()
        self.threads: list[threading.Thread] = []

    # ---- instances ------------------------------------------------------------------------------

    def _base_of(self, slot: int) -> Callable[[], str]:
        """Where the slot's current process listens ("" while it has none), for its stream tap."""
        return lambda: self.nodes[slot].server.base if slot < len(self.nodes) else ""

    def start_all(self) -> None:
        for i in range(INSTANCES):
            server = ServeProcess.spawn(f"i{i}", self.url, self.tmp_path, self.settings, new_session=True)
            self.nodes.append(Node(i, server))
            self.propagation.spawned(i, server.pid)
        for node in self.nodes:
            node.server.wait_listening(90)
        self.taps.start()
        for node in self.nodes:
            assert self.ready(node, 60), f"{node.server.name} never became ready"
            self.rejoin(node)

    def start_thread(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def close(self) -> None:
        """The one teardown: threads, stream taps, instances, then every process group spawned; none survives."""
        self.stop_traffic()
        self.stop_checking()
        for thread in self.threads:
            thread.join(35)
        taps_stopped = self.taps.stop()
        for node in self.nodes:
            with contextlib.suppress(Exception):  # whatever state it is in, the reaper follows
                node.server.stop()
        survivors = self.spawned.kill_all()
        lingering = [t.name for t in self.threads if t.is_alive()]
        assert not survivors, f"spawned processes survived the soak's teardown: {survivors}"
        assert taps_stopped, "the stream taps' thread survived the soak's teardown"
        assert not lingering, f"threads survived the soak's teardown: {lingering}"

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
        node.started = time.time()
        self.propagation.spawned(node.slot, node.server.pid)
        try:
            node.server.wait_listening(90)
        except AssertionError:
            return False
        self._set(node, "up")
        return self.ready(node) and self.rejoin(node)

    def away(self, node: Node) -> None:
        """Before a fault takes the node away: its stream is excluded from the invariant until it rejoins."""
        self.propagation.away(node.slot, time.time())

    def rejoin(self, node: Node, timeout: float = 30) -> bool:
        """Count the node live again once our stream to its current process is open and its listener is."""

        def listening() -> bool:
            if not self.taps.connected(node.slot, node.server.base, node.started):
                return False
            with contextlib.suppress(ApiError, OSError):
                status = node.server.call("GET", "/api/admin/scanner/safeguards/status", timeout=5)
                return bool((status.get("events_listener") or {}).get("connected"))
            return False

        try:
            wait_for(listening, timeout, f"{node.server.name}'s stream and listener", interval=0.1)
        except AssertionError as exc:
            self.violations.streams.append((node.server.name, str(exc)))
            return False
        self.propagation.back(node.slot, time.time())
        return True

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
                if self.ready(node) and self.rejoin(node):
                    self.survived["sigstop"] += 1

    # ---- faults ---------------------------------------------------------------------------------

    def inject(self, fault: str) -> None:
        self.injected[fault] += 1
        self.propagation.fault(fault, time.time())
        if getattr(self, f"_{fault}")():
            self.survived[fault] += 1
        self.probe(fault)

    def probe(self, fault: str) -> None:
        """Write two events on one live node (a library added, then removed) and await them on the others."""
        live = [n for n in self.up() if self.propagation.is_live(n.slot)]
        if len(live) < 2:
            self.probes["skipped"] += 1
            return
        writer = self.rng.choice(live)
        root = self.tmp_path / "probes" / f"p{sum(self.probes.values())}"
        root.mkdir(parents=True)
        written: list[int] = []
        with self.propagation.probing(), contextlib.suppress(ApiError, OSError):
            added = writer.server.call("POST", "/api/admin/libraries", {"path": str(root)})["library"]["id"]
            written += self._probe_written("library.added", added, fault)
            writer.server.call("DELETE", f"/api/admin/libraries/{added}")
            written += self._probe_written("library.removed", added, fault)
        self.probes["written" if len(written) == 2 else "failed"] += 1
        others = [n.slot for n in live if n is not writer]
        with contextlib.suppress(AssertionError):  # one that never comes is the judge's to report
            wait_for(
                lambda: all(self.propagation.arrived_everywhere(i, others) for i in written),
                PROPAGATION_BOUND + 3,
                f"probe events {written} on {others}",
                interval=0.02,
            )

    def _probe_written(self, kind: str, library_id: int, fault: str) -> list[int]:
        committed = time.time()  # the call answered: its transaction committed before this
        ids = [
            int(i)
            for (i,) in db_rows(
                self.url, f"SELECT id FROM events WHERE kind = '{kind}' AND library_id = {library_id}"
            )
        ]
        for event_id in ids:
            self.propagation.probe(event_id, fault, committed)
        return ids

    def _victim(self) -> Node | None:
        candidates = self.up()
        return self.rng.choice(candidates) if candidates else None

    def _kill9(self) -> bool:
        node = self._victim()
        if node is None:
            return True
        self.away(node)
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
        self.away(node)
        node.server.signal(signal.SIGSTOP)
        self._set(node, "frozen")
        node.thaw_at = time.monotonic() + self.rng.uniform(0.5, BOUND + 3)
        return None  # counted as survived when it is thawed and answers again

    def _sigterm(self) -> bool:
        node = self._victim()
        if node is None:
            return True
        self.away(node)
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
        """Every listener loses its connection: all nodes are away until theirs is back (then they catch up)."""
        nodes = self.up()
        for node in nodes:
            self.away(node)
        self.db_down_until = float("inf")
        try:
            self.pg.restart(self.rng.choice(("fast", "immediate")))
        finally:
            self.db_down_until = time.monotonic()
        back = [self.ready(n, 60) and self.rejoin(n) for n in nodes]  # every node, even after one failed
        return all(back)

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
        except ValueError:
            if node.server.base:  # an answer that is not JSON: a real fault, not a restart's empty address
                raise
            status = 0  # a concurrent fault restarted it: no address yet
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
            self.violations.propagation += self.propagation.check(time.time())[0]
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

    def final_propagation_check(self) -> None:
        """Every event in the table reached every stream (or was exempt): wait for the last deadlines."""

        def unheard(record: TapRecord) -> dict[int, Seen]:
            rows = db_rows(self.url, "SELECT id, at, kind, instance FROM events")
            out = {}
            for event_id, at, kind, instance in rows:
                if int(event_id) not in record.events:
                    stamp = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
                    out[int(event_id)] = Seen(stamp, str(kind), str(instance), stamp)
            return out

        def decided() -> bool:
            misses, undecided = self.propagation.check(time.time(), unheard)
            self.violations.propagation += misses
            return undecided == 0

        try:
            wait_for(decided, 15, "every event's verdict on every stream", interval=0.25)
        except AssertionError as exc:
            self.violations.streams.append(("final", str(exc)))


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


@contextlib.contextmanager
def running_soak(
    url: str, pg: postgres.ThrowawayServer, tmp_path: Path, rng: random.Random
) -> Iterator[Soak]:
    """The soak's instance set, threads and stream taps; on the way out, whatever happened, all of it gone."""
    soak = Soak(url, pg, tmp_path, rng)
    try:
        soak.start_all()
        yield soak
    finally:
        soak.close()


def test_three_instances_survive_kills_freezes_restarts_database_faults_and_admin_storms(
    throwaway_pg: postgres.ThrowawayServer, tmp_path: Path
) -> None:
    """Faults at random for SOAK_SECONDS; the invariants hold throughout and the index is exact at the end."""
    rng = random.Random(SEED)
    url = postgres.create_database(throwaway_pg.admin_url)
    roots: dict[int, Path] = {}
    try:
        with running_soak(url, throwaway_pg, tmp_path, rng) as soak:
            first = soak.nodes[0]
            for n in range(LIBRARIES):
                root = tmp_path / f"lib{n}"
                build_tree(root, FILES, 5)
                library = first.server.call("POST", "/api/admin/libraries", {"path": str(root)})["library"]
                roots[library["id"]] = root
                soak.request(rng.choice(soak.up()), "POST", f"/api/admin/scanner/safe/start/{library['id']}")
            soak.start_thread(soak.check_forever, "soak-checker")
            soak.start_thread(soak.traffic_forever, "soak-traffic")
            soak.run_faults(list(roots), SOAK_SECONDS)
            soak.stop_traffic()
            soak.thaw_due(force=True)
            for node in soak.nodes:
                if node.state == "down" or not node.server.alive():
                    soak.restart(node)
            _final_scans(soak, roots)
            soak.check_once()
            soak.stop_checking()
            soak.final_propagation_check()
        _assert_index_exact(url, roots)
    finally:
        postgres.drop_database(throwaway_pg.admin_url, url)

    report = (
        f"soak seed={SEED} seconds={SOAK_SECONDS:g} checks={soak.checks} "
        f"injected={dict(soak.injected)} survived={dict(soak.survived)} statuses={dict(soak.statuses)} "
        f"probes={dict(soak.probes)}\n{soak.propagation.summary()}"
    )
    print(report)
    assert soak.violations == Violations(), f"{report}\n{soak.violations}"
    unsurvived = {
        k: soak.injected[k] - soak.survived[k] for k in soak.injected if soak.survived[k] < soak.injected[k]
    }
    assert not unsurvived, f"faults not survived: {unsurvived}\n{report}"
