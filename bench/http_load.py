"""The admin API under load: concurrent aiohttp clients against a real `scanguard serve`, in one of two mixes.

    python bench/http_load.py                      # control mix (issue 4): 200 clients, 30 s, 20 libraries
    python bench/http_load.py --mix mixed          # mixed load (issue 18): 100 clients while 10 libraries scan
    python bench/http_load.py --seconds 10         # a quicker run while iterating

It builds media trees in a temporary directory, starts `scanguard serve` on 127.0.0.1 (a free port, a
fresh SQLite file), adds the libraries, then runs the clients for --seconds. Each client loops over its
mix's weighted operations on random libraries:
- `control`: start / pause / resume (the safe routes, by job id, or the seed's alias routes, by library id)
  / safeguards status / current-jobs / GET /healthz, with a small scan batch so that scans last long
  enough to be paused and resumed;
- `mixed`: current-jobs / GET jobs?status=running / pause and resume through the alias routes / safe/start
  / GET /healthz, while every library scans (its scan is started before the clients, with the default
  batch size, over enough files that the scans run through the whole measurement).
Meanwhile a poller thread reads the database straight through sqlite3 every 20 ms: it records any library
with more than one job in pending/running/paused, and how many scans were running.

It prints p50/p99 latency and throughput per route beside /healthz's, measured in the same run, and the
ratio of each admin p99 to the /healthz p99 (goal: <= 5x; the mixed load also >= 500 requests/s overall).
Exit status 0 only with zero 5xx answers, zero transport errors, never two active jobs for one library,
and a clean SIGTERM exit of the server. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

TOKEN = "http-load-token"  # noqa: S105 - a throwaway server's token
EXTS = ("flac", "mp3", "ogg", "m4a", "mkv", "jpg")
HEALTHZ = "GET /healthz"


@dataclass(frozen=True)
class Mix:
    """One client mix: its weighted operations and the defaults of the run it is measured in."""

    ops: tuple[tuple[str, int], ...]  # (operation, weight)
    clients: int
    libraries: int
    files: int
    batch_size: int
    scanning: bool  # every library's scan is started before the clients
    min_rate: float  # requests/s overall the run should reach (0: no bar)


MIXES = {
    # issue 4: the control operations, safe and alias, racing on libraries whose small batches keep them busy
    "control": Mix(
        ops=(
            ("start", 20),
            ("pause", 14),
            ("resume", 14),
            ("status", 12),
            ("current-jobs", 20),
            ("healthz", 20),
        ),
        clients=200,
        libraries=20,
        files=1000,
        batch_size=20,
        scanning=False,
        min_rate=0,
    ),
    # issue 18 item 4: readers and operators of a service whose libraries are all scanning
    "mixed": Mix(
        ops=(
            ("current-jobs", 20),
            ("jobs-running", 20),
            ("pause-alias", 15),
            ("resume-alias", 15),
            ("start", 15),
            ("healthz", 15),
        ),
        clients=100,
        libraries=10,
        files=10_000,
        batch_size=1000,
        scanning=True,
        min_rate=500,
    ),
}


def build_trees(root: Path, libraries: int, files: int) -> list[Path]:
    paths = []
    for lib in range(libraries):
        base = root / f"library-{lib:02d}"
        for i in range(files):
            album = base / f"Artist {i // 200:02d}" / f"Album {i // 20 % 10:02d}"
            album.mkdir(parents=True, exist_ok=True)
            (album / f"{i % 20 + 1:02d} - Track {i}.{EXTS[i % len(EXTS)]}").write_bytes(b"m" * (16 + i % 50))
        paths.append(base)
    return paths


class Server:
    """`scanguard serve` as a child process; its log goes to a file."""

    def __init__(self, workdir: Path, batch_size: int, extra_env: dict[str, str]) -> None:
        self.db = workdir / "scanguard.db"
        self.log_path = workdir / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGUARD_")}
        env.update(
            {
                "SCANGUARD_ADMIN_TOKEN": TOKEN,
                "XDG_DATA_HOME": str(workdir / "data"),
                "SCANGUARD_SCAN_BATCH_SIZE": str(batch_size),
                "SCANGUARD_LOG_LEVEL": "warning",
                "SCANGUARD_LOG_FORMAT": "json",
                **extra_env,
            }
        )
        exe = shutil.which("scanguard", path=str(Path(sys.executable).parent)) or "scanguard"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [exe, "serve", "--host", "127.0.0.1", "--port", "0", "--database", f"sqlite:///{self.db}"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = re.search(r"listening on (http://\S+)", self.log_path.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.proc.kill()
        raise SystemExit(
            f"scanguard serve did not start:\n{self.log_path.read_text(errors='replace')[-3000:]}"
        )

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self._log.close()


class ActiveJobPoller(threading.Thread):
    """Reads scan_jobs straight from the database: never two active jobs for one library."""

    def __init__(self, db: Path, interval: float = 0.02) -> None:
        super().__init__(daemon=True, name="active-job-poller")
        self.db = db
        self.interval = interval
        self.stop_event = threading.Event()
        self.polls = 0
        self.violations: list[tuple[int, int]] = []
        self.max_active = 0
        self.running: list[int] = []  # scans in status running, at each poll

    def run(self) -> None:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            while not self.stop_event.wait(self.interval):
                rows = conn.execute(
                    "SELECT library_id, COUNT(*), SUM(status = 'running') FROM scan_jobs "
                    "WHERE status IN ('pending', 'running', 'paused') GROUP BY library_id"
                ).fetchall()
                self.polls += 1
                self.running.append(sum(running for _lib, _n, running in rows))
                self.max_active = max(self.max_active, len(rows))
                self.violations.extend((lib, n) for lib, n, _running in rows if n > 1)
        finally:
            conn.close()


@dataclass
class Stats:
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    transport_errors: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    started: float = 0.0
    elapsed: float = 0.0  # from the first request to the last answer
    client_cpu: float = 0.0  # this process's CPU seconds meanwhile (the clients and the poller)


def choose(op: str, lib: int, jobs: dict[int, int], rng: random.Random) -> tuple[str, str, str]:
    """(method, path, label) of one request; pause/resume go by job id (safe) or by library id (alias),
    pause-alias/resume-alias by library id only."""
    job = jobs.get(lib)
    if op == "start":
        return "POST", f"/api/admin/scanner/safe/start/{lib}", "POST safe/start"
    if op in ("pause", "resume"):
        if job is not None and rng.random() < 0.7:
            return "POST", f"/api/admin/scanner/safe/{op}/{job}", f"POST safe/{op}"
        return "POST", f"/api/admin/scanner/{op}/{lib}", f"POST {op} (alias)"
    if op in ("pause-alias", "resume-alias"):
        alias = op.removesuffix("-alias")
        return "POST", f"/api/admin/scanner/{alias}/{lib}", f"POST {alias} (alias)"
    if op == "status":
        return "GET", "/api/admin/scanner/safeguards/status", "GET safeguards/status"
    if op == "current-jobs":
        return "GET", "/api/admin/scanner/current-jobs", "GET current-jobs"
    if op == "jobs-running":
        return "GET", "/api/admin/scanner/jobs?status=running", "GET jobs?status=running"
    return "GET", "/healthz", HEALTHZ


async def client(
    session: aiohttp.ClientSession,
    base: str,
    mix: Mix,
    libraries: list[int],
    jobs: dict[int, int],
    stats: Stats,
    deadline: float,
    rng: random.Random,
) -> None:
    ops, weights = zip(*mix.ops, strict=True)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    while time.monotonic() < deadline:
        op = rng.choices(ops, weights)[0]
        method, path, label = choose(op, rng.choice(libraries), jobs, rng)
        started = time.perf_counter()
        try:
            async with session.request(method, base + path, headers=auth) as response:
                body = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            stats.transport_errors[f"{label}: {type(exc).__name__}"] += 1
            continue
        stats.latency[label].append(time.perf_counter() - started)
        stats.statuses[label][status] += 1
        if status >= 500:
            stats.server_errors.append(f"{label} -> {status}: {str(body)[:200]}")
        if isinstance(body, dict):
            if "job" in body and isinstance(body["job"], dict):
                jobs[body["job"]["library_id"]] = body["job"]["id"]
            elif op in ("current-jobs", "jobs-running"):
                for j in body.get("jobs", []):
                    jobs[j["library_id"]] = j["id"]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] * 1000


async def run_load(
    server: Server, trees: list[Path], mix: Mix, clients: int, seconds: float, seed: int
) -> Stats:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        libraries = []
        jobs: dict[int, int] = {}
        for tree in trees:
            async with session.post(
                server.url + "/api/admin/libraries", json={"path": str(tree)}, headers=auth
            ) as response:
                if response.status != 201:
                    raise SystemExit(f"adding {tree} failed: {response.status} {await response.text()}")
                libraries.append((await response.json())["library"]["id"])
        if mix.scanning:
            for library in libraries:
                path = f"{server.url}/api/admin/scanner/safe/start/{library}"
                async with session.post(path, headers=auth) as response:
                    body = await response.json()
                    if response.status == 201:
                        jobs[library] = body["job"]["id"]
                    elif response.status == 409:  # its watcher's catch-up scan started first
                        jobs[library] = body["error"]["details"]["job_id"]
                    else:
                        raise SystemExit(f"starting a scan failed: {response.status} {body}")
        stats = Stats()
        stats.started = time.monotonic()
        deadline = stats.started + seconds
        await asyncio.gather(
            *(
                client(session, server.url, mix, libraries, jobs, stats, deadline, random.Random(seed + i))
                for i in range(clients)
            )
        )
        stats.elapsed = time.monotonic() - stats.started
        return stats


@dataclass(frozen=True)
class Outcome:
    """What one run measured: its bar figures and whether it stayed correct."""

    rate: float
    worst: float
    health_p99: float
    cpu: float
    ok: bool


def report(
    stats: Stats, mix: Mix, poller: ActiveJobPoller, scans: dict[str, int], cpu: float, exit_code: int
) -> Outcome:
    seconds = stats.elapsed
    health_p99 = pct(stats.latency[HEALTHZ], 0.99)
    total = sum(len(v) for v in stats.latency.values())
    rate = total / seconds
    print(
        f"\n{total} requests in {seconds:.1f} s ({rate:.0f}/s); CPU seconds: server {cpu:.1f} "
        f"({cpu / seconds:.2f} cores), clients {stats.client_cpu:.1f} ({stats.client_cpu / seconds:.2f} cores)"
    )
    header = f"{'route':<26} {'n':>7} {'req/s':>6} {'p50 ms':>8} {'p99 ms':>8} {'p99/healthz':>12}  statuses"
    print(header)
    print("-" * len(header))
    order = [label for label in sorted(stats.latency) if label != HEALTHZ] + [HEALTHZ]
    worst = 0.0
    for label in order:
        values = stats.latency[label]
        p99 = pct(values, 0.99)
        ratio = p99 / health_p99 if health_p99 else float("nan")
        if label != HEALTHZ:
            worst = max(worst, ratio)
        codes = " ".join(f"{code}:{n}" for code, n in sorted(stats.statuses[label].items()))
        print(
            f"{label:<26} {len(values):>7} {len(values) / seconds:>6.0f} {pct(values, 0.5):>8.1f} {p99:>8.1f} "
            f"{ratio:>11.2f}x  {codes}"
        )
    all_admin = [v for label, vs in stats.latency.items() if label != HEALTHZ for v in vs]
    print(
        f"{'all admin routes':<26} {len(all_admin):>7} {len(all_admin) / seconds:>6.0f} "
        f"{pct(all_admin, 0.5):>8.1f} {pct(all_admin, 0.99):>8.1f} {pct(all_admin, 0.99) / health_p99:>11.2f}x"
    )
    print(f"\nmean healthz latency {statistics.fmean(stats.latency[HEALTHZ]) * 1000:.1f} ms")
    print(f"worst admin p99 / healthz p99: {worst:.2f}x (goal <= 5x: {'met' if worst <= 5 else 'NOT met'})")
    if mix.min_rate:
        verdict = "met" if rate >= mix.min_rate else "NOT met"
        print(f"throughput: {rate:.0f} requests/s (goal >= {mix.min_rate:.0f}: {verdict})")
    if poller.running:
        print(
            f"scans running while measured: mean {statistics.fmean(poller.running):.1f}, "
            f"min {min(poller.running)}, max {max(poller.running)}; at the end: "
            + ", ".join(f"{n} {status}" for status, n in sorted(scans.items()))
        )
    print(f"5xx answers: {len(stats.server_errors)}")
    for line in stats.server_errors[:10]:
        print(f"  {line}")
    print(f"transport errors: {sum(stats.transport_errors.values())} {dict(stats.transport_errors)}")
    print(
        f"active-job poller: {poller.polls} polls, at most {poller.max_active} libraries active at once, "
        f"{len(poller.violations)} violations (two active jobs for one library)"
    )
    print(f"server exit code on SIGTERM: {exit_code}")
    ok = not stats.server_errors and not stats.transport_errors and not poller.violations and exit_code == 0
    return Outcome(rate, worst, health_p99, cpu, ok)


def job_states(db: Path) -> dict[str, int]:
    """How many jobs are in each status, and how many files are indexed, read straight from the database."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        states = dict(conn.execute("SELECT status, COUNT(*) FROM scan_jobs GROUP BY status").fetchall())
        states["files indexed"] = conn.execute("SELECT COUNT(*) FROM media_files").fetchone()[0]
        return states
    finally:
        conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(workdir: Path, mix: Mix, args: argparse.Namespace) -> Outcome:
    """One run: a fresh server on a fresh database over the trees in `workdir`, loaded for --seconds."""
    trees = sorted((workdir / "media").iterdir())
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    server = Server(run_dir, args.batch_size, dict(item.split("=", 1) for item in args.env))
    print(f"\nserver at {server.url}; {args.clients} clients for {args.seconds:g} s ({args.mix} mix)")
    poller = ActiveJobPoller(server.db)
    poller.start()
    try:
        cpu_before, client_before = cpu_seconds(server.proc.pid), time.process_time()
        stats = asyncio.run(run_load(server, trees, mix, args.clients, args.seconds, args.seed))
        cpu = cpu_seconds(server.proc.pid) - cpu_before
        stats.client_cpu = time.process_time() - client_before
        scans = job_states(server.db)
    finally:
        poller.stop_event.set()
        poller.join(timeout=5)
        exit_code = server.stop()
    outcome = report(stats, mix, poller, scans, cpu, exit_code)
    if not outcome.ok:
        print(f"FAILED (server log: {server.log_path})")
    return outcome


def critical_paths(workdir: Path) -> list[str]:
    """What start, pause, resume and delete cost on their critical path, counted through the real app in
    this process (tests/support/budget.py): actor asks, transactions and SQL statements."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import scanguard
    from scanguard.http import create_app
    from tests.support.budget import Budget
    from tests.support.inprocess import InProcessServer
    from tests.support.waiting import QUIET_SAFEGUARDS, GatedFileSystem

    root = build_trees(workdir / "paths", 1, 50)[0]
    gate = GatedFileSystem(root)  # the scans wait at their root: nothing else writes meanwhile
    config = scanguard.load_config(
        environ={},
        database={"url": f"sqlite:///{workdir / 'paths.db'}"},
        safeguards=QUIET_SAFEGUARDS,
        http={"admin_token": TOKEN},
        log={"level": "error"},
    )
    rt = scanguard.Runtime.start(config, fs=gate)
    server = InProcessServer(create_app(rt))
    lines = []

    async def run() -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(server.url, headers=headers) as http:
            async with http.post("/api/admin/libraries", json={"path": str(root)}) as reply:
                library = (await reply.json())["library"]["id"]
            budget = Budget()
            job = 0
            steps = [
                ("start", "StartScan", "POST", f"/api/admin/scanner/safe/start/{library}"),
                ("pause", "PauseScan", "POST", "/api/admin/scanner/safe/pause/{job}"),
                ("resume", "ResumeScan", "POST", "/api/admin/scanner/safe/resume/{job}"),
                ("delete", "DeleteJob", "DELETE", "/api/admin/scanner/safe/jobs/{job}"),
            ]
            with budget.active(rt.database):
                for name, phase, method, path in steps:
                    gate.reached.clear()
                    budget.reset()
                    async with http.request(method, path.format(job=job)) as reply:
                        body = await reply.json()
                        job = job or body["job"]["id"]
                    lines.append(f"{name:<7} {budget.operation(phase).line()}")
                    if name in ("start", "resume"):
                        await asyncio.to_thread(gate.reached.wait, 30)

    try:
        asyncio.run(run())
    finally:
        gate.release.set()
        server.stop()
        rt.stop()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mix", choices=sorted(MIXES), default="control")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on a fresh server and database")
    parser.add_argument("--clients", type=int, help="concurrent clients (default: the mix's)")
    parser.add_argument("--libraries", type=int, help="libraries (default: the mix's)")
    parser.add_argument("--files", type=int, help="media files per library (default: the mix's)")
    parser.add_argument("--batch-size", type=int, help="scan batch size (default: the mix's)")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="server environment (repeatable)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    mix = MIXES[args.mix]
    for name in ("clients", "libraries", "files", "batch_size"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(mix, name))

    workdir = Path(tempfile.mkdtemp(prefix="scanguard-http-load-"))
    try:
        started = time.monotonic()
        build_trees(workdir / "media", args.libraries, args.files)
        print(f"built {args.libraries} trees of {args.files} files in {time.monotonic() - started:.1f} s")
        outcomes = [measure(workdir, mix, args) for _ in range(args.repeat)]
        if args.repeat > 1:
            print(f"\n{args.repeat} runs ({args.mix} mix):")
            for i, o in enumerate(outcomes, 1):
                print(
                    f"  run {i}: {o.rate:.0f} requests/s, worst admin p99 {o.worst:.2f}x healthz p99 "
                    f"({o.health_p99:.1f} ms), server CPU {o.cpu:.1f} s, {'ok' if o.ok else 'FAILED'}"
                )
        ok = all(o.ok for o in outcomes)
        print("\ncritical path per operation (counted in this process, through the real app, SQLite):")
        for line in critical_paths(workdir):
            print(f"  {line}")
        if not ok:
            args.keep = True
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
