"""The scan benchmark of issue 2: scanguard against a hand-written os.scandir + sqlite3 baseline.

    python bench/scan.py                 # 100,000 files: full scan and unchanged rescan, both ways
    python bench/scan.py --files 20000   # a quicker run while iterating
    python bench/scan.py --rss           # the same at 100,000 and 500,000 files, with the RSS growth
    python bench/scan.py --repeat 3      # best of three for every timing

It builds a synthetic tree (Artist/Album/NN - Track.flac, 20 tracks and a cover.nfo per album, so ~5%
non-media, a few bytes per file) in a temporary directory, then, in the same run, times:

- the baseline: recursive os.scandir + stat, the media rule by extension, stdlib sqlite3 executemany in
  1,000-row transactions (WAL, synchronous=NORMAL) into a fresh database file; its rescan is walk + stat +
  compare against a dict loaded from that database (it writes nothing);
- scanguard: `python -m scanguard.cli scan PATH --database sqlite:///... --no-progress` as a whole process
  (timed end to end: interpreter start-up and imports count) and in-process (Runtime.start -> start_scan ->
  wait_for_job, imports done before the clock starts), each into a fresh database; then an unchanged
  rescan, both ways.

Every measurement runs in its own child process (this file re-run with --worker), so each one starts cold
and its peak RSS is its own (VmHWM, polled: see PeakRss). Ratios are scanguard/baseline: the goal is <= 1.0, and RSS
at 500k <= 1.2x RSS at 100k. The results are checked: scanguard's media_files must equal the baseline's
media rows (same paths), and a rescan must report files_changed == 0. Exit status 0 unless a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
TRACKS_PER_ALBUM = 20
ALBUMS_PER_ARTIST = 10
BATCH = 1000

# the default media rule of scanguard (DESIGN §4); the baseline applies the same rule by hand
MEDIA_EXTENSIONS = {
    **dict.fromkeys(("flac", "mp3", "m4a", "aac", "ogg", "opus", "wav", "wma", "aiff", "alac"), "audio"),
    **dict.fromkeys(("mkv", "mp4", "m4v", "avi", "mov", "wmv", "webm", "ts", "mpg", "mpeg"), "video"),
    **dict.fromkeys(("jpg", "jpeg", "png", "gif", "webp", "heic", "tif", "tiff", "bmp"), "image"),
}


# ---- the tree -------------------------------------------------------------------------------------


def build_tree(root: Path, files: int) -> tuple[int, int]:
    """Artist/Album/NN - Track.flac with a cover.nfo per album; returns (media files, other files)."""
    media = other = 0
    payload = b"fLaC\x00\x00\x00\x22"
    album_index = 0
    while media + other < files:
        artist = root / f"Artist {album_index // ALBUMS_PER_ARTIST:05d}"
        album = artist / f"Album {album_index % ALBUMS_PER_ARTIST:02d}"
        album.mkdir(parents=True, exist_ok=True)
        for track in range(1, TRACKS_PER_ALBUM + 1):
            if media + other >= files:
                break
            with open(album / f"{track:02d} - Track {track}.flac", "wb") as fh:
                fh.write(payload)
            media += 1
        if media + other < files:
            with open(album / "cover.nfo", "wb") as fh:
                fh.write(b"<album/>")
            other += 1
        album_index += 1
    return media, other


# ---- the baseline (runs in a worker process) ------------------------------------------------------

BASELINE_SCHEMA = """
CREATE TABLE IF NOT EXISTS media_files (
    id INTEGER PRIMARY KEY,
    library_id INTEGER NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    media_type TEXT NOT NULL,
    UNIQUE (library_id, path)
)
"""


def _baseline_walk(root: str):  # type: ignore[no-untyped-def]
    """(relative path, stat, media type) of every media file: recursive os.scandir, no sorting."""
    types = MEDIA_EXTENSIONS

    def walk(path: str, prefix: str):  # type: ignore[no-untyped-def]
        with os.scandir(path) as it:
            entries = list(it)
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from walk(entry.path, prefix + name + "/")
                continue
            dot = name.rfind(".")
            kind = types.get(name[dot + 1 :].lower()) if dot > 0 else None
            if kind is None:
                continue
            yield prefix + name, entry.stat(follow_symlinks=False), kind

    yield from walk(root, "")


def baseline_scan(root: str, db: str) -> dict[str, Any]:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(BASELINE_SCHEMA)
    insert = "INSERT INTO media_files (library_id, path, size, mtime, media_type) VALUES (1, ?, ?, ?, ?)"
    rows: list[tuple[str, int, float, str]] = []
    count = 0
    for rel, st, kind in _baseline_walk(root):
        rows.append((rel, st.st_size, st.st_mtime, kind))
        if len(rows) >= BATCH:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, rows)
            conn.execute("COMMIT")
            count += len(rows)
            rows.clear()
    if rows:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows)
        conn.execute("COMMIT")
        count += len(rows)
    conn.close()
    return {"media": count, "changed": count}


def baseline_rescan(root: str, db: str) -> dict[str, Any]:
    conn = sqlite3.connect(db, isolation_level=None)
    known = {
        path: (size, mtime) for path, size, mtime in conn.execute("SELECT path, size, mtime FROM media_files")
    }
    conn.close()
    seen = changed = 0
    for rel, st, _kind in _baseline_walk(root):
        seen += 1
        if known.get(rel) != (st.st_size, st.st_mtime):
            changed += 1
    return {"media": seen, "changed": changed}


# ---- scanguard in-process (runs in a worker process) ----------------------------------------------


def scanguard_inprocess(root: str, db: str) -> dict[str, Any]:
    from scanguard import Runtime
    from scanguard.config import load_config

    cfg = load_config(database={"url": f"sqlite:///{db}"}, log={"level": "warning"})
    started = time.perf_counter()
    cpu = time.process_time()
    rt = Runtime.start(cfg, watch=False)
    try:
        resolved = str(Path(root).resolve())
        library = next((lib for lib in rt.list_libraries() if lib.path == resolved), None)
        if library is None:
            library = rt.add_library(resolved)
        job = rt.start_scan(library.id)
        job = rt.wait_for_job(job.id, timeout=3600)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        rt.stop()
    return {
        "elapsed": elapsed,
        "cpu": cpu,
        "status": job.status,
        "media": job.files_processed,
        "changed": job.files_changed,
        "skipped": job.files_skipped,
    }


def worker(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    cpu = time.process_time()
    if args.worker == "baseline-scan":
        result = baseline_scan(args.root, args.db)
    elif args.worker == "baseline-rescan":
        result = baseline_rescan(args.root, args.db)
    elif args.worker == "scanguard-inprocess":
        result = scanguard_inprocess(args.root, args.db)
    else:
        raise SystemExit(f"unknown worker {args.worker}")
    result.setdefault("elapsed", time.perf_counter() - started)
    result.setdefault("cpu", time.process_time() - cpu)
    result["rss_kb"] = vm_hwm_kb()
    print(json.dumps(result))
    return 0


# ---- the driver -----------------------------------------------------------------------------------


@dataclass
class Run:
    wall: float  # the child process, end to end
    inner: float | None  # the timed section inside it
    rss_kb: int
    cpu: float  # user + system seconds of the child process (all its threads)
    inner_cpu: float | None = None  # ... of the timed section
    out: dict[str, Any] = field(default_factory=dict)
    descendant_kb: int = 0  # the largest peak RSS of a process below it (a fork shares its parent's pages)


def _env() -> dict[str, str]:
    # the run must not pick up a developer's SCANGUARD_* settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGUARD_")}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # an installed scanguard runs from cached bytecode; a shell that forbids writing it would have every
    # run compile the package's ~100 modules again (~0.15 s of each run on this machine)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_bytecode() -> None:
    """Compile what the timed runs import once, before any clock starts (as pip does at install)."""
    modules = "scanguard.cli, scanguard.cli_scan, scanguard.runtime, scanguard.walk_child"
    subprocess.run([sys.executable, "-c", f"import {modules}"], env=_env(), check=True)


def vm_hwm_kb(pid: int | str = "self") -> int:
    """The peak RSS (KiB) of a process's current program, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds_of(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """The pids below a process (children, their children, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _is_fork_of(pid: int, parent: int) -> bool:
    """Whether a process is the parent's own fork (its child, running the parent's program, not exec'd)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as fh, open(f"/proc/{parent}/cmdline", "rb") as pfh:
            return ppid == parent and fh.read() == pfh.read()
    except (OSError, ValueError):
        return False


class PeakRss:
    """Polls a child's VmHWM until it exits, and the CPU time of the processes below it.

    Not ru_maxrss: Linux carries a process's high-water mark across fork and exec, so every child would
    report at least this driver's own peak (and the driver holds every path of the tree for the checks).
    VmHWM belongs to the program the child runs; it only grows, so polling misses at most the last tick.
    The descendants' CPU is their last polled value: the walk process and the forkserver that forks it are
    never reaped by the scan process, so its own rusage does not hold them.
    """

    def __init__(self, pid: int) -> None:
        self.pid, self.kb = pid, 0
        self.descendants_cpu: dict[int, float] = {}
        self._forks: set[int] = set()
        self.descendant_kb = 0  # the largest peak of a process below it (the walk process, a worker)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        ticks = 0
        while not self._done.wait(0.01):
            self.kb = max(self.kb, vm_hwm_kb(self.pid))
            ticks += 1
            if ticks % 5:
                continue  # the tree every 50 ms: listing /proc costs more than one status file
            for child in descendants(self.pid):
                if child in self._forks or _is_fork_of(child, self.pid):
                    # a fork the scan process reaps itself (the walk `scanguard scan` starts ahead): its
                    # CPU is in the scan process's own rusage already
                    self._forks.add(child)
                elif (cpu := cpu_seconds_of(child)) is not None:
                    self.descendants_cpu[child] = cpu
                self.descendant_kb = max(self.descendant_kb, vm_hwm_kb(child))

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.kb


def run_child(cmd: list[str], log: Path) -> tuple[float, int, float, str, int]:
    """Run one child; return its wall time, its own peak RSS (KiB), its CPU seconds, its stdout and the
    largest peak RSS (KiB) of a process below it."""
    with open(log, "ab") as err, tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=_env(), cwd=REPO)
        peak = PeakRss(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        rss_kb = peak.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}; see {log}")
    cpu = usage.ru_utime + usage.ru_stime + sum(peak.descendants_cpu.values())
    return wall, rss_kb, cpu, text, peak.descendant_kb


def run_worker(kind: str, root: Path, db: Path, log: Path) -> Run:
    cmd = [sys.executable, str(HERE), "--worker", kind, "--root", str(root), "--db", str(db)]
    wall, rss, cpu, text, below = run_child(cmd, log)
    out = json.loads(text.strip().splitlines()[-1])
    return Run(wall, out["elapsed"], max(rss, out["rss_kb"]), cpu, out["cpu"], out, below)


def scan_command(root: Path, db: Path) -> list[str]:
    """`scanguard scan` of root into a SQLite file, as a whole process (the benches' scanguard side)."""
    return [
        sys.executable,
        "-m",
        "scanguard.cli",
        "scan",
        str(root),
        "--database",
        f"sqlite:///{db}",
        "--no-progress",
    ]


def run_cli(root: Path, db: Path, log: Path) -> Run:
    wall, rss, cpu, _, below = run_child(scan_command(root, db), log)
    return Run(wall, None, rss, cpu, descendant_kb=below)


def fresh(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def best(runs: list[Run], inner: bool = False) -> Run:
    """The fastest run (of the timed section, for in-process rows)."""
    return min(runs, key=lambda r: r.inner if inner and r.inner is not None else r.wall)


def seconds(run: Run, inner: bool) -> tuple[float, float]:
    """(wall, cpu) of a run: the whole process, or the timed section inside it."""
    if inner and run.inner is not None and run.inner_cpu is not None:
        return run.inner, run.inner_cpu
    return run.wall, run.cpu


def db_paths(db: Path, query: str) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute(query)}
    finally:
        conn.close()


def last_job(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM scan_jobs ORDER BY id DESC LIMIT 1").fetchone()
        return dict(row)
    finally:
        conn.close()


@dataclass
class SizeResult:
    files: int
    media: int
    other: int
    build_seconds: float
    rows: dict[str, tuple[list[Run], list[Run]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def db_state(db: Path) -> tuple[Any, ...]:
    """What a rescan of an unchanged tree must not move: rows, ids, last-seen stamps, missing marks."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return tuple(
            conn.execute(
                "SELECT count(*), max(id), max(last_seen_at), count(missing_since), total(size) FROM media_files"
            ).fetchone()
        )
    finally:
        conn.close()


def check_scan(name: str, db: Path, expected: set[str], media: int, other: int) -> list[str]:
    problems = []
    got = db_paths(db, "SELECT path FROM media_files WHERE missing_since IS NULL")
    if got != expected:
        problems.append(
            f"scanguard {name} media_files: {len(got)} rows, baseline {len(expected)} "
            f"({len(got - expected)} extra, {len(expected - got)} absent)"
        )
    job = last_job(db)
    if (job["status"], job["files_processed"], job["files_skipped"]) != ("completed", media, other):
        problems.append(
            f"scanguard {name} job: {job['status']}, {job['files_processed']} processed, "
            f"{job['files_skipped']} skipped (expected completed, {media}, {other})"
        )
    return problems


def check_rescan(name: str, db: Path, before: tuple[Any, ...], media: int) -> list[str]:
    problems = []
    job = last_job(db)
    if (job["status"], job["files_changed"], job["files_processed"]) != ("completed", 0, media):
        problems.append(
            f"scanguard {name} rescan: {job['status']}, {job['files_changed']} changed, "
            f"{job['files_processed']} processed"
        )
    after = db_state(db)
    if after != before:
        problems.append(f"scanguard {name} rescan wrote media_files rows: {before} -> {after}")
    return problems


def bench_size(files: int, repeat: int, tmp: Path, keep: bool) -> SizeResult:
    work = Path(tempfile.mkdtemp(prefix=f"scanguard-bench-{files}-", dir=tmp))
    root = work / "library"
    root.mkdir()
    log = work / "children.log"
    started = time.perf_counter()
    media, other = build_tree(root, files)
    result = SizeResult(files, media, other, time.perf_counter() - started)
    say = f"[{files:,} files]"
    print(f"{say} tree built in {result.build_seconds:.1f}s at {root}", file=sys.stderr, flush=True)
    try:
        base_db, cli_db, ip_db = (
            work / "baseline.db",
            work / "scanguard-cli.db",
            work / "scanguard-inprocess.db",
        )
        base_scan, base_rescan, cli_scan, cli_rescan, ip_scan, ip_rescan = [], [], [], [], [], []
        # warm the page cache with one untimed walk, so that the first timed run is not penalised
        sum(1 for _ in _baseline_walk(str(root)))
        # the three contenders take turns in every round, so that a noisy neighbour hurts them alike
        for i in range(repeat):
            base_scan.append(run_worker("baseline-scan", root, fresh(base_db), log))
            cli_scan.append(run_cli(root, fresh(cli_db), log))
            ip_scan.append(run_worker("scanguard-inprocess", root, fresh(ip_db), log))
            print(f"{say} full scans, round {i + 1}/{repeat} done", file=sys.stderr, flush=True)
        expected = db_paths(base_db, "SELECT path FROM media_files")
        if len(expected) != media:
            result.problems.append(f"baseline found {len(expected)} media files, the tree has {media}")
        result.problems += check_scan("cli", cli_db, expected, media, other)
        result.problems += check_scan("in-process", ip_db, expected, media, other)
        cli_state, ip_state = db_state(cli_db), db_state(ip_db)
        for i in range(repeat):
            base_rescan.append(run_worker("baseline-rescan", root, base_db, log))
            cli_rescan.append(run_cli(root, cli_db, log))
            result.problems += check_rescan("cli", cli_db, cli_state, media)
            ip_rescan.append(run_worker("scanguard-inprocess", root, ip_db, log))
            result.problems += check_rescan("in-process", ip_db, ip_state, media)
            print(f"{say} rescans, round {i + 1}/{repeat} done", file=sys.stderr, flush=True)
        if any(r.out["changed"] != 0 for r in base_rescan):
            result.problems.append("the baseline's rescan saw changes in an unchanged tree")
        result.rows = {
            "scan": (base_scan, cli_scan),
            "scan-inprocess": (base_scan, ip_scan),
            "rescan": (base_rescan, cli_rescan),
            "rescan-inprocess": (base_rescan, ip_rescan),
        }
    finally:
        if keep:
            print(f"{say} kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


LABELS = {
    "scan": "full scan, whole process",
    "scan-inprocess": "full scan, in-process",
    "rescan": "rescan, whole process",
    "rescan-inprocess": "rescan, in-process",
}


def report(res: SizeResult, repeat: int) -> None:
    print()
    print(f"{res.files:,} files ({res.media:,} media + {res.other:,} other), best of {repeat}")
    header = (
        f"{'':26} {'baseline':>9} {'scanguard':>9} {'ratio':>6} {'base files/s':>12} {'sg files/s':>10}"
        f"  {'cpu: base':>9} {'sg':>6} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for key, label in LABELS.items():
        base, sg = res.rows[key]
        inner = key.endswith("inprocess")
        b, b_cpu = seconds(best(base, inner), inner)
        s, s_cpu = seconds(best(sg, inner), inner)
        print(
            f"{label:26} {b:7.2f} s {s:7.2f} s {s / b:6.2f} {res.media / b:12,.0f} {res.media / s:10,.0f}"
            f"  {b_cpu:7.2f} s {s_cpu:4.2f} s {s_cpu / b_cpu:6.2f}"
        )
    for key, label in (("scan", "peak RSS, scan process"), ("rescan", "peak RSS, rescan process")):
        base, sg = res.rows[key]
        b_mb = max(r.rss_kb for r in base) / 1024
        s_mb = max(r.rss_kb for r in sg) / 1024
        print(f"{label:26} {b_mb:6.1f} MB {s_mb:6.1f} MB")
    walk_mb = max(r.descendant_kb for key in ("scan", "rescan") for r in res.rows[key][1]) / 1024
    print(f"{'peak RSS, walk process':26} {'':9} {walk_mb:6.1f} MB  (the largest process below the scan's)")
    if res.problems:
        print("CORRECTNESS: FAILED")
        for p in res.problems:
            print(f"  - {p}")
    else:
        print(f"correctness: ok (media_files = baseline = {res.media:,} paths; rescans changed 0)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--files", type=int, default=100_000, help="files in the synthetic tree (default 100000)"
    )
    parser.add_argument(
        "--rss", action="store_true", help="run at 100,000 and 500,000 files and compare peak RSS"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each measurement; the best is reported"
    )
    parser.add_argument(
        "--tmp", type=Path, default=None, help="where to build the tree (default: the system temp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the tree and the databases")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    tmp = args.tmp or Path(tempfile.gettempdir())
    sizes = [100_000, 500_000] if args.rss else [args.files]
    warm_bytecode()
    results = [bench_size(n, max(1, args.repeat), tmp, args.keep) for n in sizes]
    print(
        f"\nscanguard bench — python {sys.version.split()[0]}, {os.cpu_count()} CPUs; ratio = scanguard / baseline (goal <= 1.0)"
    )
    for res in results:
        report(res, max(1, args.repeat))
    if args.rss:
        small, large = results
        s_kb = max(r.rss_kb for r in small.rows["scan"][1])
        l_kb = max(r.rss_kb for r in large.rows["scan"][1])
        rs_kb = max(r.rss_kb for r in small.rows["rescan"][1])
        rl_kb = max(r.rss_kb for r in large.rows["rescan"][1])
        print()
        print("peak RSS of the scanguard scan process (goal: 500k <= 1.2 x 100k)")
        print(f"  full scan: {s_kb / 1024:.1f} MB at 100k, {l_kb / 1024:.1f} MB at 500k: x{l_kb / s_kb:.2f}")
        print(
            f"  rescan:    {rs_kb / 1024:.1f} MB at 100k, {rl_kb / 1024:.1f} MB at 500k: x{rl_kb / rs_kb:.2f}"
        )
        ws_kb = max(r.descendant_kb for key in ("scan", "rescan") for r in small.rows[key][1])
        wl_kb = max(r.descendant_kb for key in ("scan", "rescan") for r in large.rows[key][1])
        print(
            f"  walk:      {ws_kb / 1024:.1f} MB at 100k, {wl_kb / 1024:.1f} MB at 500k: x{wl_kb / ws_kb:.2f}"
        )
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
