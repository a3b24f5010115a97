"""The NAS benchmark of issue 18: scanguard on a filesystem with a round trip per call, against a serial loop.

    python bench/nas.py                     # 5,000 files, 1 ms per call; walkers 1, 4, 8 and 16
    python bench/nas.py --repeat 3          # best of three for every timing (use this on a shared machine)
    python bench/nas.py --delay 0.005       # a slower NAS
    python bench/nas.py --walkers 1,32      # other walker counts

It builds bench/scan.py's tree (Artist/Album/NN - Track.flac, 20 tracks and a cover.nfo per album) in a
temporary directory and serves it through tests/support/slowfs.py: a read-only FUSE passthrough whose
getattr, readdir and open each sleep `--delay` (libfuse answers on several threads, so calls in flight at
once sleep at once, as on a NAS). Each measurement gets a fresh mount (no kernel cache carried over) and
runs as a child process, timed end to end, taking turns in every round:

- the baseline: a serial raw loop over the mount: recursive os.scandir, the media rule by extension and a
  stat of each media file (bench/scan.py's walk, no database);
- scanguard: `python -m scanguard.cli scan MOUNT --database sqlite:///... --no-progress`, whole process,
  into a fresh database, with SCANGUARD_SCAN_WALKERS=N for each N.

Ratio = scanguard / baseline; the bar of issue 18 is <= 0.7 (walkers > 1). The results are checked: every
scan completed with exactly the baseline's media paths. It exits 0 (printing why) where FUSE cannot be used.
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
import time
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
sys.path[:0] = [str(REPO), str(HERE.parent)]

from scan import _baseline_walk, _env, build_tree, fresh, scan_command  # noqa: E402 - bench/scan.py: no side effects on import

from tests.support.slowfs import fuse_unavailable, slow_mount  # noqa: E402

BAR = 0.7


def baseline_worker(root: str) -> int:
    """The serial raw loop: prints the media paths it found (sorted) as JSON."""
    paths = sorted(rel for rel, _st, _kind in _baseline_walk(root))
    print(json.dumps(paths))
    return 0


def run_timed(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, str]:
    with open(log, "ab") as err:
        started = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=REPO, check=False)
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}; see {log}")
    return wall, proc.stdout.decode()


def scan_result(db: Path) -> tuple[str, set[str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        status = conn.execute("SELECT status FROM scan_jobs ORDER BY id DESC LIMIT 1").fetchone()[0]
        paths = {row[0] for row in conn.execute("SELECT path FROM media_files WHERE missing_since IS NULL")}
    finally:
        conn.close()
    return status, paths


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one straight run of the benchmark
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=5000, help="files in the tree (default 5000)")
    parser.add_argument("--delay", type=float, default=0.001, help="seconds per FUSE call (default 0.001)")
    parser.add_argument("--walkers", default="1,4,8,16", help="walker counts to time (default 1,4,8,16)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the best of each is reported")
    parser.add_argument("--tmp", type=Path, default=None, help="where to build the tree")
    parser.add_argument("--keep", action="store_true", help="keep the tree and the databases")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return baseline_worker(args.worker)
    reason = fuse_unavailable()
    if reason:
        print(f"bench/nas.py skipped: {reason}")
        return 0
    walkers = [int(w) for w in args.walkers.split(",")]
    repeat = max(1, args.repeat)
    work = Path(tempfile.mkdtemp(prefix="scanguard-bench-nas-", dir=args.tmp))
    root = work / "library"
    root.mkdir()
    log = work / "children.log"
    media, other = build_tree(root, args.files)
    print(f"[nas] tree of {media:,} media + {other:,} other files at {root}", file=sys.stderr, flush=True)
    times: dict[str, list[float]] = {"baseline": [], **{f"w{n}": [] for n in walkers}}
    problems: list[str] = []
    expected: set[str] = set()
    try:
        for i in range(repeat):
            with slow_mount(root, args.delay) as mnt:
                wall, out = run_timed([sys.executable, str(HERE), "--worker", str(mnt)], _env(), log)
            times["baseline"].append(wall)
            expected = set(json.loads(out))
            if len(expected) != media:
                problems.append(f"the baseline found {len(expected)} media files, the tree has {media}")
            for n in walkers:
                db = fresh(work / f"scanguard-w{n}.db")
                with slow_mount(root, args.delay) as mnt:
                    env = {**_env(), "SCANGUARD_SCAN_WALKERS": str(n), "SCANGUARD_LOG_LEVEL": "warning"}
                    wall, _ = run_timed(scan_command(mnt, db), env, log)
                times[f"w{n}"].append(wall)
                status, paths = scan_result(db)
                if status != "completed" or paths != expected:
                    problems.append(
                        f"walkers={n}: job {status}, {len(paths)} paths "
                        f"({len(paths - expected)} extra, {len(expected - paths)} absent)"
                    )
            print(f"[nas] round {i + 1}/{repeat} done", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"[nas] kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    base = min(times["baseline"])
    print(
        f"\nscanguard NAS bench — python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {media:,} media files "
        f"through a FUSE passthrough sleeping {args.delay * 1000:g} ms per getattr/readdir/open; best of {repeat}"
    )
    header = f"{'':34} {'seconds':>8} {'ratio':>6} {'files/s':>8}"
    print(header)
    print("-" * len(header))
    print(f"{'serial raw loop (scandir + stat)':34} {base:8.2f} {1:6.2f} {media / base:8,.0f}")
    for n in walkers:
        best = min(times[f"w{n}"])
        mark = "" if n == 1 else ("  ok" if best / base <= BAR else f"  over the bar ({BAR})")
        print(
            f"{f'scanguard scan, walkers = {n}':34} {best:8.2f} {best / base:6.2f} {media / best:8,.0f}{mark}"
        )
    if problems:
        print("CORRECTNESS: FAILED")
        for p in problems:
            print(f"  - {p}")
        return 1
    print(f"correctness: ok (every scan completed with the baseline's {media:,} media paths)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
