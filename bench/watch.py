"""The watching benchmark of issue 15: latency from a file's creation to its row, an event storm until the
index is exact, and what a 10,000-folder library holds (kernel watches, RSS).

    python bench/watch.py                       # settle 1s, 20 single files, a 20,000-file storm, 10,000 folders
    python bench/watch.py --settle 5            # the default settle (the goal: median <= settle + 0.5 s)
    python bench/watch.py --storm 5000 --folders 2000   # quicker (0 skips a part)

Each part runs an in-process Runtime watching a fresh library in a temporary directory (SQLite file):
- latency: after the catch-up scan, one file at a time is created; the time until its row is present in
  the database (read straight from the SQLite file, polled every 5 ms) is recorded; median and max;
- storm: N files written at once into N/100 new folders; the time from the first write until every one is
  indexed (exact: the present rows equal the files), and files per second;
- folders: a library of F folders (one file each) is watched; the inotify watches this process holds
  (from /proc/self/fdinfo) and the RSS growth from before the library was added.
Exit status 0 unless a check fails (a file never indexed, or a storm that does not end exact).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

import scanguard


def _config(tmp: Path, settle: float) -> scanguard.Config:
    return scanguard.load_config(
        environ={},
        database={"url": f"sqlite:///{tmp / 'bench.db'}"},
        log={"level": "error", "format": "json"},
        watch={
            "settle": settle,
            "max_delay": max(settle * 4, 5),
            "rescan_interval": 0,
            "max_pending": 100_000,
        },
    )


def _present(db: Path, library_id: int) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT path FROM media_files WHERE library_id = ? AND missing_since IS NULL", (library_id,)
        ).fetchall()
    return {r[0] for r in rows}


def _has(db: Path, path: str) -> bool:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT 1 FROM media_files WHERE path = ?", (path,)).fetchone() is not None


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"FAILED: {what} within {timeout:g}s")
        time.sleep(0.005)


def _watching(rt: scanguard.Runtime, library_id: int) -> None:
    _wait(lambda: rt.get_library(library_id).watch.state == "watching", 120, "watching")
    _wait(
        lambda: any(j.status == "completed" for j in rt.list_jobs(library_id=library_id).items),
        600,
        "the catch-up scan",
    )
    _wait(lambda: not rt.current_jobs(), 600, "an idle library")


def latency(settle: float, count: int) -> list[float]:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        root = tmp / "lib"
        root.mkdir()
        rt = scanguard.Runtime.start(_config(tmp, settle))
        try:
            lib = rt.add_library(root, watch=True)
            _watching(rt, lib.id)
            times = []
            for i in range(count):
                rel = f"f{i:03d}.flac"
                started = time.monotonic()
                (root / rel).write_bytes(b"x" * 1000)
                _wait(lambda rel=rel: _has(tmp / "bench.db", rel), settle + 30, f"{rel} indexed")
                times.append(time.monotonic() - started)
            return times
        finally:
            rt.stop()


def storm(settle: float, files: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        root = tmp / "lib"
        root.mkdir()
        rt = scanguard.Runtime.start(_config(tmp, settle))
        try:
            lib = rt.add_library(root, watch=True)
            _watching(rt, lib.id)
            expected = set()
            started = time.monotonic()
            for i in range(files):
                rel = f"d{i // 100:04d}/t{i:05d}.flac"
                if i % 100 == 0:
                    (root / rel).parent.mkdir()
                (root / rel).write_bytes(b"s")
                expected.add(rel)
            _wait(lambda: _present(tmp / "bench.db", lib.id) == expected, 600, "the storm indexed exactly")
            elapsed = time.monotonic() - started
            jobs = rt.list_jobs(library_id=lib.id, limit=1000).total
            return files / elapsed, jobs
        finally:
            rt.stop()


def _watches() -> int:
    held = 0
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            text = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        held += text.count("inotify wd:")
    return held


def folders(count: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        root = tmp / "lib"
        for i in range(count):
            folder = root / f"a{i // 100:03d}" / f"b{i:05d}"
            folder.mkdir(parents=True)
            (folder / "t.flac").write_bytes(b"f")
        rt = scanguard.Runtime.start(_config(tmp, 1.0))
        try:
            before = psutil.Process().memory_info().rss
            lib = rt.add_library(root, watch=True)
            _watching(rt, lib.id)
            return _watches(), (psutil.Process().memory_info().rss - before) / 2**20
        finally:
            rt.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=20, help="single files for the latency part")
    parser.add_argument("--storm", type=int, default=20_000)
    parser.add_argument("--folders", type=int, default=10_000)
    args = parser.parse_args()
    times = latency(args.settle, args.files)
    median = statistics.median(times)
    print(
        f"latency: settle {args.settle:g}s, {len(times)} files: median {median:.3f}s, max {max(times):.3f}s "
        f"(goal <= settle + 0.5 = {args.settle + 0.5:g}s: {'met' if median <= args.settle + 0.5 else 'missed'})"
    )
    if args.storm:
        rate, jobs = storm(args.settle, args.storm)
        print(
            f"storm: {args.storm} files in {args.storm // 100} new folders: {rate:.0f} files/s until exact, {jobs} jobs"
        )
    if args.folders:
        watches, rss = folders(args.folders)
        print(f"folders: {args.folders} folders: {watches} inotify watches held, RSS +{rss:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
