"""The tag-reading benchmark of issue 7: scanguard's audio_tags against a plain serial mutagen loop.

    python bench/tags.py                 # 20,000 real tagged audio files, plus the cost of one hang
    python bench/tags.py --files 2000    # a quicker run while iterating
    python bench/tags.py --rss           # the same at 20,000 and 100,000 files, with the RSS growth
    python bench/tags.py --repeat 3      # best of three for every timing

It builds real tagged audio files (tests/support/media.py: build_bulk_audio, FLAC/MP3/Ogg in turn, each a
0.5 s tone with its own tags) in a temporary directory, reads every file once to warm the page cache, then
in the same run, each measurement in a child process of its own:

- the baseline: a plain serial loop: sorted walk, stat, mutagen.File(path, easy=True), the tags and
  stream facts as JSON, stdlib sqlite3 executemany in 1,000-row transactions (WAL, synchronous=NORMAL) into
  a fresh database file;
- scanguard: `python -m scanguard.cli scan PATH --database sqlite:///FRESH.db --no-progress` with
  SCANGUARD_SCAN_PROCESSORS=audio_tags (workers: the default, one per CPU), start to exit;
- the cost of one quarantined hang: the same command on a 200-file library with a host processor
  (hangmod:process, written into the temp dir and put on PYTHONPATH) that never returns for one file,
  SCANGUARD_SCAN_FILE_TIMEOUT=2s, against the same library without that file.

Ratios: scanguard / baseline seconds (goal <= 0.6, must not exceed 1.0), scanguard files/s over beets'
76 files/s on this machine (goal >= 40x), hang cost / file_timeout (expected ~2: a try and one retry).
Peak RSS of scanguard's whole process tree (the CLI process and every descendant: the worker pool) is the
largest sum, over 50 ms polls, of the VmHWM of the tree's live processes: an upper bound of the tree's
simultaneous peak (each process's own peak counts even if they did not coincide, shared pages count in
each process), never inflated by recycled workers that already exited.

It checks what it timed and exits 1 on a mismatch: scanguard's media_files paths equal the baseline's, the
job completed with no errors, and for a sample of files the stored title/artist/album equal the
baseline's; in the hang run, exactly the hanging file has an error and no metadata.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
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
sys.path[:0] = [str(REPO), str(HERE.parent)]

from scan import MEDIA_EXTENSIONS, fresh, scan_command, vm_hwm_kb  # noqa: E402 - bench/scan.py: no side effects on import

from tests.support.media import build_bulk_audio, bulk_path, missing_reason  # noqa: E402

BATCH = 1000
BEETS_FILES_PER_SECOND = 76.0  # beets 2.14 `import -A` on this machine (issue 7)
GOAL_RATIO, MAX_RATIO, GOAL_BEETS = 0.6, 1.0, 40.0
HANG_FILES = 200
HANG_TIMEOUT = 2.0
SAMPLE = 500  # files whose title/artist/album are compared with the baseline's
POLL = 0.05
CHILD_TIMEOUT = 900.0  # seconds: a child that runs longer is killed with its process group (set by --timeout)
TAG_NAMES = {  # by hand, as scanguard.processing.builtins.AUDIO_TAG_NAMES: the baseline imports no scanguard
    "title": "title",
    "artist": "artist",
    "album": "album",
    "albumartist": "album_artist",
    "tracknumber": "track",
    "discnumber": "disc",
    "date": "date",
    "genre": "genre",
}
CHECKED = ("title", "artist", "album")
HANG_MODULE = '''"""A host processor for bench/tags.py: never returns for a file named like *hang*."""
import threading


def process(ctx):
    if "hang" in ctx.path:
        threading.Event().wait()
    return {"size": ctx.size}
'''


# ---- the baseline (runs in a child process) -------------------------------------------------------

BASELINE_SCHEMA = """
CREATE TABLE IF NOT EXISTS media_files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    media_type TEXT NOT NULL,
    error TEXT,
    meta TEXT
)
"""


def sorted_walk(root: str):  # type: ignore[no-untyped-def]
    """(relative path, absolute path, media type) of every media file, in byte order of the path."""

    def walk(path: str, prefix: str):  # type: ignore[no-untyped-def]
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name.encode("utf-8", "surrogateescape"))
        files, dirs = [], []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            (dirs if entry.is_dir(follow_symlinks=False) else files).append(entry)
        # byte order of whole paths: "a/b" sorts after "a b" and "a.x" ('/' is 0x2f), so merge by key
        merged = sorted(
            [(e.name.encode("utf-8", "surrogateescape"), e, False) for e in files]
            + [((e.name + "/").encode("utf-8", "surrogateescape"), e, True) for e in dirs],
            key=lambda t: t[0],
        )
        for _key, entry, is_dir in merged:
            if is_dir:
                yield from walk(entry.path, prefix + entry.name + "/")
                continue
            dot = entry.name.rfind(".")
            kind = MEDIA_EXTENSIONS.get(entry.name[dot + 1 :].lower()) if dot > 0 else None
            if kind is not None:
                yield prefix + entry.name, entry.path, kind

    yield from walk(root, "")


def read_tags(abs_path: str) -> dict[str, Any]:
    """What audio_tags stores, read the plain way: easy tags (first value) and the stream facts."""
    import mutagen

    audio = mutagen.File(abs_path, easy=True)
    if audio is None:
        raise ValueError("not recognised as audio")
    out: dict[str, Any] = {}
    tags = audio.tags or {}
    for key, name in TAG_NAMES.items():
        values = tags.get(key)
        if values:
            out[name] = str(values[0])
    info = audio.info
    out["duration"] = round(float(info.length), 3)
    out["bitrate"] = int(getattr(info, "bitrate", 0) or 0)
    out["sample_rate"] = int(getattr(info, "sample_rate", 0) or 0)
    out["channels"] = int(getattr(info, "channels", 0) or 0)
    out["codec"] = audio.mime[0]
    return out


def baseline_scan(root: str, db: str) -> dict[str, Any]:
    import mutagen

    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(BASELINE_SCHEMA)
    insert = "INSERT INTO media_files (path, size, mtime, media_type, error, meta) VALUES (?, ?, ?, ?, ?, ?)"
    rows: list[tuple[str, int, float, str, str | None, str | None]] = []
    count = errors = 0

    def flush() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows)
        conn.execute("COMMIT")
        rows.clear()

    for rel, abs_path, kind in sorted_walk(root):
        st = os.stat(abs_path)
        try:
            meta, error = json.dumps({"audio_tags": read_tags(abs_path)}), None
        except (mutagen.MutagenError, ValueError) as exc:
            meta, error = None, f"{type(exc).__name__}: {exc}"
            errors += 1
        rows.append((rel, st.st_size, st.st_mtime, kind, error, meta))
        count += 1
        if len(rows) >= BATCH:
            flush()
    if rows:
        flush()
    conn.close()
    return {"media": count, "errors": errors}


def worker(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    cpu = time.process_time()
    if args.worker != "baseline":
        raise SystemExit(f"unknown worker {args.worker}")
    result = baseline_scan(args.root, args.db)
    result["elapsed"] = time.perf_counter() - started
    result["cpu"] = time.process_time() - cpu
    result["rss_kb"] = vm_hwm_kb()
    print(json.dumps(result))
    return 0


# ---- measuring a process tree ---------------------------------------------------------------------


def tree_pids(pid: int) -> list[int]:
    """pid and all its live descendants (/proc/PID/task/TID/children)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            tids = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as fh:
                    todo.extend(int(child) for child in fh.read().split())
            except OSError:
                continue
    return out


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process so far, in clock ticks (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), counted after "pid (comm)"


class TreePeak:
    """Polls a child's process tree until it exits: the largest sum of the live processes' VmHWM.

    It also keeps each process's last-seen CPU time, so the tree's CPU includes workers that a forkserver,
    not the child, reaped (it misses at most the last poll interval of each process).
    """

    def __init__(self, pid: int) -> None:
        self.pid, self.kb, self.processes = pid, 0, 0
        self.main_kb = self.other_kb = 0  # the child's own peak; the largest peak of any other process
        self.seen: set[int] = set()
        self.ticks: dict[int, int] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.wait(POLL):
            pids = tree_pids(self.pid)
            self.seen.update(pids)
            self.processes = max(self.processes, len(pids))
            hwm = {p: vm_hwm_kb(p) for p in pids}
            self.kb = max(self.kb, sum(hwm.values()))
            self.main_kb = max(self.main_kb, hwm.get(self.pid, 0))
            self.other_kb = max([self.other_kb, *(kb for p, kb in hwm.items() if p != self.pid)])
            for p in pids:
                self.ticks[p] = max(self.ticks.get(p, 0), cpu_ticks(p))

    def tree_cpu(self) -> float:
        """CPU seconds of every process seen in the tree (the child's own included)."""
        return sum(self.ticks.values()) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.kb


@dataclass
class Run:
    wall: float
    cpu: float  # user + system seconds of the child and the descendants it waited for
    tree_cpu: float  # ... of every process seen in its tree, polled (workers a forkserver reaped too)
    main_cpu: float  # ... of the child process alone, polled
    rss_kb: int
    rc: int = 0
    processes: int = 1  # most processes alive at once in the tree
    spawned: int = 1  # processes seen in the tree over the run
    timed_out: bool = False  # killed after CHILD_TIMEOUT seconds
    main_kb: int = 0  # peak RSS of the child process alone
    other_kb: int = 0  # the largest peak RSS of any other process of its tree (a worker, the forkserver)
    out: dict[str, Any] = field(default_factory=dict)


def child_env(**extra: str) -> dict[str, str]:
    """The environment without a developer's SCANGUARD_* settings, the repo on PYTHONPATH, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGUARD_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed scanguard runs from cached bytecode
    for key, value in extra.items():
        env[key] = value if key != "PYTHONPATH" else value + os.pathsep + env["PYTHONPATH"]
    return env


def run_child(cmd: list[str], log: Path, env: dict[str, str]) -> Run:
    """Run one child to its end (killed with its group after CHILD_TIMEOUT): times, CPU, peak tree RSS, exit code."""
    with open(log, "ab") as err, tempfile.TemporaryFile() as out:
        err.write(f"\n$ {' '.join(cmd)}\n".encode())
        err.flush()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO, start_new_session=True)
        peak = TreePeak(proc.pid)
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(CHILD_TIMEOUT, expire)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        wall = time.perf_counter() - started
        rss_kb = peak.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().decode().strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    cpu = usage.ru_utime + usage.ru_stime
    return Run(
        wall,
        cpu,
        max(cpu, peak.tree_cpu()),
        peak.ticks.get(proc.pid, 0) / os.sysconf("SC_CLK_TCK"),
        max(rss_kb, result.get("rss_kb", 0)),
        proc.returncode,
        peak.processes,
        len(peak.seen),
        expired.is_set(),
        peak.main_kb,
        peak.other_kb,
        result,
    )


def ended(run: Run) -> str:
    """How a failed child ended, for a problem line."""
    return f"did not finish in {CHILD_TIMEOUT:g}s (killed)" if run.timed_out else f"exited {run.rc}"


def run_baseline(root: Path, db: Path, log: Path) -> Run:
    cmd = [sys.executable, str(HERE), "--worker", "baseline", "--root", str(root), "--db", str(db)]
    run = run_child(cmd, log, child_env())
    if run.rc != 0:
        killed = f" (killed after {CHILD_TIMEOUT:g}s)" if run.timed_out else ""
        raise SystemExit(f"the baseline exited {run.rc}{killed}; see {log}")
    return run


def run_scanguard(root: Path, db: Path, log: Path, **env: str) -> Run:
    return run_child(scan_command(root, db), log, child_env(**env))


def scanguard_ready() -> str:
    """'' when this tree's scanguard has issue 7's processors, else why not."""
    done = subprocess.run(
        [sys.executable, "-m", "scanguard.cli", "scan", "--help"],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=REPO,
        check=False,
    )
    if done.returncode != 0:
        return f"`scanguard scan --help` exited {done.returncode}: {done.stderr.strip()[-300:]}"
    if "--retry-failed" not in done.stdout:
        return "issue 7 has not landed here: `scanguard scan --help` has no --retry-failed"
    return ""


# ---- checks ---------------------------------------------------------------------------------------


def _ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def rows_by_path(db: Path, query: str) -> dict[str, tuple[Any, ...]]:
    conn = _ro(db)
    try:
        return {row[0]: tuple(row[1:]) for row in conn.execute(query)}
    finally:
        conn.close()


def last_job(db: Path) -> dict[str, Any]:
    conn = _ro(db)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM scan_jobs ORDER BY id DESC LIMIT 1").fetchone()
        return dict(row) if row else {}
    finally:
        conn.close()


def _loads(meta: Any) -> Any:
    return json.loads(meta) if isinstance(meta, str) else meta


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def check_tags(base_db: Path, sg_db: Path, media: int, run: Run) -> list[str]:
    """scanguard's rows against the baseline's: same paths, no errors, the sample's title/artist/album."""
    problems = []
    if run.rc != 0:
        problems.append(f"scanguard scan {ended(run)}")
    base = rows_by_path(base_db, "SELECT path, error, meta FROM media_files")
    sg = rows_by_path(sg_db, "SELECT path, error, meta FROM media_files WHERE missing_since IS NULL")
    if len(base) != media:
        problems.append(f"the baseline indexed {len(base):,} files, the library has {media:,}")
    if set(sg) != set(base):
        problems.append(
            f"scanguard media_files: {len(sg):,} paths, baseline {len(base):,} "
            f"({len(set(sg) - set(base))} extra, {len(set(base) - set(sg))} absent)"
        )
    failed = [path for path, (error, _meta) in sg.items() if error is not None]
    if failed:
        problems.append(f"scanguard recorded {len(failed)} errors, e.g. {failed[0]}: {sg[failed[0]][0]}")
    sample = sorted(
        random.Random(7).sample(sorted(set(sg) & set(base)), min(SAMPLE, len(set(sg) & set(base))))
    )
    wrong = []
    for path in sample:
        want = (_loads(base[path][1]) or {}).get("audio_tags", {})
        got = (_loads(sg[path][1]) or {}).get("audio_tags", {})
        if any(_first(got.get(key)) != want.get(key) or want.get(key) is None for key in CHECKED):
            wrong.append((path, {k: got.get(k) for k in CHECKED}, {k: want.get(k) for k in CHECKED}))
    if wrong:
        path, got, want = wrong[0]
        problems.append(f"{len(wrong)} of {len(sample)} sampled files differ, e.g. {path}: {got} != {want}")
    job = last_job(sg_db)
    if (job.get("status"), job.get("files_processed"), job.get("errors")) != ("completed", media, 0):
        problems.append(
            f"scanguard job: {job.get('status')}, {job.get('files_processed')} processed, "
            f"{job.get('errors')} errors (expected completed, {media:,}, 0)"
        )
    return problems


def check_hang(db: Path, media: int, hang_path: str, run: Run) -> list[str]:
    """The hang run: completed, every file indexed, exactly the hanging file quarantined."""
    problems = []
    if run.rc != 0:
        problems.append(f"hang run: scanguard scan {ended(run)}")
    rows = rows_by_path(db, "SELECT path, error, meta FROM media_files WHERE missing_since IS NULL")
    if len(rows) != media:
        problems.append(f"hang run: {len(rows)} files indexed, expected {media}")
    failed = {path for path, (error, _meta) in rows.items() if error is not None}
    if failed != {hang_path}:
        problems.append(f"hang run: files with an error {sorted(failed)[:3]}, expected only {hang_path}")
    elif _loads(rows[hang_path][1]):
        problems.append(f"hang run: the quarantined file kept metadata {rows[hang_path][1]}")
    job = last_job(db)
    if job.get("status") != "completed":
        problems.append(f"hang run: job {job.get('status')}, last error {job.get('last_error')}")
    return problems


# ---- the driver -----------------------------------------------------------------------------------


def warm(root: Path) -> int:
    """Read every file once, so both sides start from a warm page cache; returns the bytes read."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                total += len(fh.read())
    return total


@dataclass
class SizeResult:
    files: int
    build_seconds: float
    base: list[Run] = field(default_factory=list)
    sg: list[Run] = field(default_factory=list)
    stat_only: list[Run] = field(default_factory=list)  # scanguard with no processor: start-up + walk + index
    problems: list[str] = field(default_factory=list)


def bench_size(files: int, repeat: int, work: Path, ready: str) -> SizeResult:
    say = f"[{files:,} files]"
    root = work / f"library-{files}"
    log = work / "children.log"
    started = time.perf_counter()
    build_bulk_audio(root, files)
    result = SizeResult(files, time.perf_counter() - started)
    mb = warm(root) / 1e6
    print(
        f"{say} built in {result.build_seconds:.1f}s ({mb:.0f} MB, cache warmed) at {root}", file=sys.stderr
    )
    base_db, sg_db = work / f"baseline-{files}.db", work / f"scanguard-{files}.db"
    for i in range(repeat):  # taking turns, so a noisy neighbour hurts both alike
        result.base.append(run_baseline(root, fresh(base_db), log))
        if not ready:
            sg = run_scanguard(root, fresh(sg_db), log, SCANGUARD_SCAN_PROCESSORS="audio_tags")
            result.sg.append(sg)
            result.problems += check_tags(base_db, sg_db, files, sg)
            result.stat_only.append(run_scanguard(root, fresh(sg_db), log))
            if result.stat_only[-1].rc != 0:
                result.problems.append(f"scanguard scan without processors {ended(result.stat_only[-1])}")
        print(f"{say} round {i + 1}/{repeat} done", file=sys.stderr, flush=True)
    if any(r.out.get("errors") for r in result.base):
        result.problems.append("the baseline could not read some files")
    return result


@dataclass
class HangResult:
    plain: list[Run] = field(default_factory=list)
    hang: list[Run] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def bench_hang(repeat: int, work: Path) -> HangResult:
    """The same 200-file library scanned with a host processor, without and with one file that hangs it."""
    plain, hung = work / "hang-plain", work / "hang-with"
    build_bulk_audio(plain, HANG_FILES)
    shutil.copytree(plain, hung)
    hang_path = bulk_path(HANG_FILES // 2).rsplit("/", 1)[0] + "/10 - hang.flac"
    shutil.copyfile(hung / bulk_path(0), hung / hang_path)
    modules = work / "pymodules"
    modules.mkdir(exist_ok=True)
    (modules / "hangmod.py").write_text(HANG_MODULE)
    warm(work)
    env = {
        "SCANGUARD_SCAN_PROCESSORS": "hangmod:process",
        "SCANGUARD_SCAN_FILE_TIMEOUT": f"{HANG_TIMEOUT:g}s",
        "PYTHONPATH": str(modules),
    }
    log = work / "children.log"
    result = HangResult()
    db = work / "hang.db"
    for i in range(repeat):
        run = run_scanguard(plain, fresh(db), log, **env)
        result.plain.append(run)
        if run.rc != 0:
            result.problems.append(f"hang run without the hanging file: scanguard scan {ended(run)}")
        run = run_scanguard(hung, fresh(db), log, **env)
        result.hang.append(run)
        result.problems += check_hang(db, HANG_FILES + 1, hang_path, run)
        print(f"[hang] round {i + 1}/{repeat} done", file=sys.stderr, flush=True)
    return result


def report(res: SizeResult, repeat: int) -> None:
    print()
    print(f"{res.files:,} tagged audio files (FLAC/MP3/Ogg), warm cache, whole process, best of {repeat}")
    row = "  {:38} {:7.2f} s {:7,.0f} files/s  cpu {:6.2f} s  peak RSS {:6.1f} MB{}"
    base = min(res.base, key=lambda r: r.wall)
    rows = [("baseline: serial mutagen + sqlite3", base, "")]
    if res.sg:
        sg = min(res.sg, key=lambda r: r.wall)
        tree = f" (tree: {sg.processes} processes at once, {sg.spawned} over the run)"
        rows.append((f"scanguard: audio_tags, {os.cpu_count()} workers", sg, tree))
    if res.stat_only:
        rows.append(("(reference) scanguard, no processor", min(res.stat_only, key=lambda r: r.wall), ""))
    for label, run, note in rows:
        print(row.format(label, run.wall, res.files / run.wall, run.tree_cpu, run.rss_kb / 1024, note))
    if not res.sg:
        return
    print(
        f"  scanguard cpu per file: {sg.tree_cpu / res.files * 1e3:.2f} ms (the CLI process "
        f"{sg.main_cpu / res.files * 1e3:.2f} ms, its workers and helpers "
        f"{(sg.tree_cpu - sg.main_cpu) / res.files * 1e3:.2f} ms); baseline {base.tree_cpu / res.files * 1e3:.2f} ms"
    )
    print(
        f"  scanguard peak RSS: the tree {sg.rss_kb / 1024:.1f} MB; the CLI process alone {sg.main_kb / 1024:.1f} MB,"
        f" the largest of the others {sg.other_kb / 1024:.1f} MB"
    )
    rate = res.files / sg.wall
    ratio = sg.wall / base.wall
    verdict = "goal met" if ratio <= GOAL_RATIO else "goal missed" if ratio <= MAX_RATIO else "OVER 1.0"
    print(
        f"  ratio scanguard / baseline: {ratio:.2f} (goal <= {GOAL_RATIO}, must not exceed {MAX_RATIO}: {verdict})"
    )
    beets = rate / BEETS_FILES_PER_SECOND
    met = "met" if beets >= GOAL_BEETS else "missed"
    print(
        f"  against beets ({BEETS_FILES_PER_SECOND:g} files/s): {beets:.0f}x (goal >= {GOAL_BEETS:g}x: {met})"
    )


def report_hang(res: HangResult) -> None:
    plain = min(r.wall for r in res.plain)
    hang = min(r.wall for r in res.hang)
    extra = hang - plain
    print()
    print(f"one quarantined hang: {HANG_FILES} files + 1 that never returns, file_timeout {HANG_TIMEOUT:g}s")
    print(f"  without the hanging file {plain:6.2f} s, with it {hang:6.2f} s: +{extra:.2f} s")
    ratio = extra / HANG_TIMEOUT
    verdict = "as expected" if ratio <= 2.5 else "MORE than a try, one retry and a worker start"
    print(f"  extra / file_timeout: {ratio:.2f} (expected ~2: a try, one retry in a fresh worker; {verdict})")


def main(argv: list[str] | None = None) -> int:
    global CHILD_TIMEOUT  # the one setting the children's runner reads from the command line
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=20_000, help="tagged audio files (default 20000)")
    parser.add_argument("--rss", action="store_true", help="run at 20,000 and 100,000 files and compare RSS")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each measurement; the best is reported"
    )
    parser.add_argument(
        "--tmp", type=Path, default=None, help="where to build the files (default: system temp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the files and the databases")
    parser.add_argument("--no-hang", action="store_true", help="skip the quarantined-hang measurement")
    parser.add_argument(
        "--timeout", type=float, default=CHILD_TIMEOUT, help="seconds before a child is killed (default 900)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    CHILD_TIMEOUT = args.timeout
    missing = missing_reason()
    if missing:
        raise SystemExit(f"bench/tags.py needs the encoders: {missing}")
    ready = scanguard_ready()
    repeat = max(1, args.repeat)
    work = Path(tempfile.mkdtemp(prefix="scanguard-bench-tags-", dir=args.tmp))
    try:
        sizes = [20_000, 100_000] if args.rss else [args.files]
        results = [bench_size(n, repeat, work, ready) for n in sizes]
        hang = None if ready or args.no_hang else bench_hang(repeat, work)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nscanguard tags bench — python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for res in results:
        report(res, repeat)
    if args.rss and not ready:
        small, large = (min(r.sg, key=lambda r: r.wall).rss_kb for r in results)
        print(
            f"\npeak RSS of the scanguard process tree: {small / 1024:.1f} MB at 20k, "
            f"{large / 1024:.1f} MB at 100k: x{large / small:.2f} (goal: flat)"
        )
        small, large = (min(r.sg, key=lambda r: r.wall).main_kb for r in results)
        print(
            f"  of the CLI process alone: {small / 1024:.1f} MB at 20k, {large / 1024:.1f} MB at 100k: x{large / small:.2f}"
        )
    if hang is not None:
        report_hang(hang)
    problems = [p for res in results for p in res.problems] + (hang.problems if hang else [])
    if ready:
        print(f"\nSCANGUARD NOT MEASURED: {ready}")
        return 2
    if problems:
        print("\nCORRECTNESS: FAILED")
        for p in problems:
            print(f"  - {p}")
        return 1
    hung = "; the hanging file alone quarantined" if hang is not None else ""
    print(
        f"\ncorrectness: ok (media_files paths = baseline's; sampled title/artist/album = baseline's{hung})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
