"""Watching (DESIGN §12) on real folders with real inotify, real threads and a real database."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import scanguard
from scanguard.actors.watch_keeper import Sync, WatcherOf, WatchKeeper
from scanguard.actors.watcher import Crash, WatchParts
from scanguard.records import Event, Job
from scanguard.watching.source import OVERFLOW, InotifySource, RawEvent
from tests.support.waiting import ProcessorGate, wait_for

pytestmark = pytest.mark.timeout(90)

SETTLE = 0.2
WATCH: dict[str, Any] = {
    "default": True,
    "settle": SETTLE,
    "max_delay": 1.0,
    "poll_interval": 3600,
    "rescan_interval": 0,
    "rearm_interval": 0.3,
    "rearm_max_interval": 1.0,
}
SLACK = 5.0  # a loaded 2-core machine; the figure itself is measured by bench/watch.py


def files(rt: scanguard.Runtime, library_id: int) -> dict[str, int]:
    """{path: size} of the library's present files."""
    out: dict[str, int] = {}
    offset = 0
    while True:
        page = rt.list_files(library_id, limit=1000, offset=offset)
        out.update({f.path: f.size for f in page.items})
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return out


def ids(rt: scanguard.Runtime, library_id: int) -> dict[str, int]:
    return {f.path: f.id for f in rt.list_files(library_id, limit=1000).items}


def jobs(rt: scanguard.Runtime, library_id: int) -> list[Job]:
    return sorted(rt.list_jobs(library_id=library_id, limit=1000).items, key=lambda j: j.id)


def settled(rt: scanguard.Runtime, library_id: int, trigger: str = "catch_up") -> Job:
    """Wait for a completed job of that trigger, and for the library to be idle."""
    job = wait_for(
        lambda: next(
            (j for j in jobs(rt, library_id) if j.trigger == trigger and j.status == "completed"), None
        ),
        30,
        f"a completed {trigger} job",
    )
    wait_for(lambda: not rt.current_jobs(), 30, "an idle library")
    return job


def watch_events(rt: scanguard.Runtime, library_id: int) -> list[Event]:
    return [e for e in rt.events(library_id=library_id, limit=1000) if e.kind.startswith("watch.")]


def write(path: Path, data: bytes = b"x" * 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def watching(
    runtime_factory: Callable[..., scanguard.Runtime], make_config: Callable[..., scanguard.Config]
) -> Callable[..., scanguard.Runtime]:
    def start(**watch: Any) -> scanguard.Runtime:
        return runtime_factory(make_config(watch={**WATCH, **watch}))

    return start


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    for i in range(3):
        write(root / f"album{i}" / f"t{i}.flac")
    return root


def test_a_created_file_is_indexed_by_a_watch_job_within_settle(
    watching: Callable[..., scanguard.Runtime], library: Path, db_url: str
) -> None:
    rt = watching()
    lib = rt.add_library(library)
    assert lib.watch.enabled
    settled(rt, lib.id)
    assert rt.get_library(lib.id).watch.state == "watching"
    started = time.monotonic()
    write(library / "album0" / "new.flac")
    wait_for(lambda: "album0/new.flac" in files(rt, lib.id), SETTLE + SLACK, "the new file indexed")
    elapsed = time.monotonic() - started
    job = settled(rt, lib.id, "watch")
    assert job.scope == ("album0/new.flac",)
    assert elapsed >= SETTLE


def test_a_growing_file_is_indexed_only_once_it_stopped_growing(
    watching: Callable[..., scanguard.Runtime], library: Path
) -> None:
    rt = watching(max_delay=0.4)  # shorter than the write: max_delay alone would index it half-written
    lib = rt.add_library(library)
    settled(rt, lib.id)
    target = library / "big.flac"
    steps, chunk = 30, b"y" * 1000
    done = threading.Event()

    def writer() -> None:
        with target.open("wb") as fh:
            for _ in range(steps):
                fh.write(chunk)
                fh.flush()
                done.wait(0.05)
        done.set()

    seen: list[int] = []
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while not done.is_set():
            size = files(rt, lib.id).get("big.flac")
            if size is not None:
                seen.append(size)
            done.wait(0.02)
    finally:
        thread.join(10)
    wait_for(lambda: files(rt, lib.id).get("big.flac") == steps * len(chunk), SLACK, "the whole file indexed")
    assert not seen, f"indexed while still growing, at sizes {seen}"


def test_more_changed_paths_than_max_pending_become_one_whole_library_scan(
    watching: Callable[..., scanguard.Runtime], library: Path
) -> None:
    rt = watching(max_pending=5)
    lib = rt.add_library(library)
    settled(rt, lib.id)
    expected = set(files(rt, lib.id))
    for i in range(12):
        write(library / f"many/{i:02d}.flac")
        expected.add(f"many/{i:02d}.flac")
    wait_for(lambda: set(files(rt, lib.id)) == expected, SLACK, "every file indexed")
    settled(rt, lib.id, "watch")
    assert any(j.trigger == "watch" and j.scope == () for j in jobs(rt, lib.id))


def test_paths_changed_while_a_job_runs_wait_and_go_into_the_next_job(
    runtime_factory: Callable[..., scanguard.Runtime],
    make_config: Callable[..., scanguard.Config],
    library: Path,
) -> None:
    gate = ProcessorGate(["album1/t1.flac"])
    rt = runtime_factory(make_config(watch=WATCH), processor=gate)
    try:
        lib = rt.add_library(library)
        gate.next_hit()  # the catch-up scan is held inside the library
        write(library / "album2" / "late.flac")
        waiting = wait_for(
            lambda: rt.get_library(lib.id).watch.pending, SETTLE + SLACK, "the change waiting for the job"
        )
        assert waiting == 1
    finally:
        gate.open_all()
    job = settled(rt, lib.id, "watch")
    assert job.scope == ("album2/late.flac",)
    assert "album2/late.flac" in files(rt, lib.id)
    assert rt.get_library(lib.id).watch.pending == 0


def test_waiting_paths_survive_a_restart_and_are_scanned_after_it(
    runtime_factory: Callable[..., scanguard.Runtime],
    make_config: Callable[..., scanguard.Config],
    library: Path,
    db_query: Callable[[str, str], list[tuple[Any, ...]]],
    db_url: str,
) -> None:
    config = make_config(watch=WATCH)
    gate = ProcessorGate(["album1/t1.flac"])
    rt = runtime_factory(config, processor=gate)
    lib = rt.add_library(library)
    gate.next_hit()
    write(library / "album2" / "late.flac")
    wait_for(lambda: rt.get_library(lib.id).watch.pending, SETTLE + SLACK, "the change waiting")
    rt.stop()  # the held job is paused `shutdown`; the waiting path stays in the database
    gate.open_all()
    assert db_query(config.database.url, "SELECT path FROM watch_pending") == [("album2/late.flac",)]
    rt2 = runtime_factory(config)
    assert rt2.get_library(lib.id).watch.pending == 1
    paused = next(j for j in jobs(rt2, lib.id) if j.status == "paused")
    rt2.resume_scan(paused.id)
    wait_for(lambda: "album2/late.flac" in files(rt2, lib.id), 30, "the waiting path scanned")
    wait_for(lambda: rt2.get_library(lib.id).watch.pending == 0, 30, "nothing left waiting")


def test_a_folder_created_with_files_already_inside_loses_none(
    watching: Callable[..., scanguard.Runtime], library: Path, tmp_path: Path
) -> None:
    rt = watching()
    lib = rt.add_library(library)
    settled(rt, lib.id)
    expected = {f"new/a/b/c/{i}.flac" for i in range(5)} | {"new/a/top.flac"}
    for rel in sorted(expected):  # mkdir -p, then the files at once: before any watch exists below new/
        write(library / rel)
    outside = tmp_path / "outside" / "copied"
    for i in range(4):
        write(outside / "cd1" / f"{i}.flac")
    shutil.copytree(outside, library / "copied")  # cp -r
    expected |= {f"copied/cd1/{i}.flac" for i in range(4)}
    wait_for(lambda: expected <= set(files(rt, lib.id)), SLACK * 2, "every file of the new folders indexed")


def test_a_folder_moved_in_from_outside_is_indexed_whole(
    watching: Callable[..., scanguard.Runtime], library: Path, tmp_path: Path
) -> None:
    rt = watching()
    lib = rt.add_library(library)
    settled(rt, lib.id)
    outside = tmp_path / "incoming" / "album9"
    for i in range(6):
        write(outside / "disc" / f"{i}.flac")
    os.rename(outside, library / "album9")  # mv from outside the library (same filesystem)
    expected = {f"album9/disc/{i}.flac" for i in range(6)}
    wait_for(lambda: expected <= set(files(rt, lib.id)), SLACK * 2, "the moved-in folder indexed")
    job = settled(rt, lib.id, "watch")
    assert job.scope == ("album9",)
    write(library / "album9" / "disc" / "later.flac")  # and it is watched from now on
    wait_for(lambda: "album9/disc/later.flac" in files(rt, lib.id), SLACK, "a file added to it later")


def test_a_renamed_folder_goes_into_one_job_with_both_sides_and_keeps_its_ids(
    watching: Callable[..., scanguard.Runtime], library: Path
) -> None:
    rt = watching()
    lib = rt.add_library(library)
    settled(rt, lib.id)
    before = ids(rt, lib.id)["album1/t1.flac"]
    os.rename(library / "album1", library / "renamed")
    wait_for(lambda: "renamed/t1.flac" in files(rt, lib.id), SLACK, "the renamed folder indexed")
    job = settled(rt, lib.id, "watch")
    assert set(job.scope) == {"album1", "renamed"}
    assert "album1/t1.flac" not in files(rt, lib.id)
    assert ids(rt, lib.id)["renamed/t1.flac"] == before  # moved, not removed and added
    assert job.files_moved == 1
    write(library / "renamed" / "more.flac")  # its watch followed the rename
    wait_for(lambda: "renamed/more.flac" in files(rt, lib.id), SLACK, "a file added after the rename")


def test_more_folders_than_max_watches_polls_with_watch_limit_then_recovers(
    watching: Callable[..., scanguard.Runtime], tmp_path: Path
) -> None:
    root = tmp_path / "many"
    for i in range(5):
        write(root / f"f{i}" / "a.flac")
    rt = watching(max_watches=3, poll_interval=0.5)  # the root and 4 more folders need 6
    lib = rt.add_library(root)
    wait_for(lambda: rt.get_library(lib.id).watch.state == "polling", SLACK, "polling")
    watch = rt.get_library(lib.id).watch
    assert watch.reason == "watch_limit"
    assert watch.message is not None
    assert "fs.inotify.max_user_watches" in watch.message
    degraded = [e for e in watch_events(rt, lib.id) if e.kind == "watch.degraded"]
    assert degraded
    assert degraded[0].data["reason"] == "watch_limit"
    assert "fs.inotify.max_user_watches" in degraded[0].data["message"]
    settled(rt, lib.id)  # the catch-up scan on entering polling
    write(root / "f0" / "polled.flac")  # polling still follows the disk, by scanning
    wait_for(lambda: "f0/polled.flac" in files(rt, lib.id), SLACK, "a change found by a poll scan")
    assert any(j.trigger == "poll" for j in jobs(rt, lib.id))
    for i in range(3):
        shutil.rmtree(root / f"f{i}")  # now 3 folders: within the limit at the next re-arm
    wait_for(lambda: rt.get_library(lib.id).watch.state == "watching", SLACK * 2, "watching again")
    assert any(e.kind == "watch.recovered" for e in watch_events(rt, lib.id))
    watching_now = rt.safeguard_status()["watching"]
    assert watching_now["libraries"]["watching"] == 1
    assert watching_now["fallbacks"] == {"watch_limit": 1.0}


def test_a_library_on_a_network_filesystem_is_polled(
    runtime_factory: Callable[..., scanguard.Runtime],
    make_config: Callable[..., scanguard.Config],
    library: Path,
) -> None:
    rt = runtime_factory(make_config(watch={**WATCH, "poll_interval": 0.5}), watch=False)
    keeper = WatchKeeper.start(
        WatchParts(rt.config, rt.store, rt.metrics, scan_of(rt), fs_type=lambda _p: "nfs4")
    )
    try:
        lib = rt.add_library(library)
        keeper.tell(Sync())
        wait_for(lambda: rt.get_library(lib.id).watch.state == "polling", SLACK, "polling")
        assert rt.get_library(lib.id).watch.reason == "network_filesystem"
        settled(rt, lib.id)
        write(library / "album0" / "remote.flac")
        wait_for(lambda: "album0/remote.flac" in files(rt, lib.id), SLACK, "a change found by a poll scan")
        assert any(j.trigger == "poll" for j in jobs(rt, lib.id))
    finally:
        keeper.stop()


class SyscallFaults(InotifySource):
    """inotify, but inotify_add_watch fails with ENOSPC while `enospc` is set; events can be injected."""

    enospc = threading.Event()
    broken = threading.Event()  # the next read fails (once), killing the reader thread
    injected: list[RawEvent] = []  # noqa: RUF012 - one list shared by the test and the source it made

    def _add(self, path: str) -> int:
        if self.enospc.is_set():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super()._add(path)

    def read(self, timeout: float) -> list[RawEvent]:
        if self.broken.is_set():
            self.broken.clear()
            raise OSError(errno.EBADF, "the inotify descriptor went bad")
        if self.injected:
            events, self.injected[:] = list(self.injected), []
            return events
        return super().read(timeout)


def scan_of(rt: scanguard.Runtime) -> Callable[[int, tuple[str, ...] | None, str], Job]:
    def start(library_id: int, paths: tuple[str, ...] | None, trigger: str) -> Job:
        return rt.start_scan(library_id, paths=None if paths is None else list(paths), trigger=trigger)

    return start


@pytest.fixture
def faulty(
    runtime_factory: Callable[..., scanguard.Runtime], make_config: Callable[..., scanguard.Config]
) -> Iterator[tuple[scanguard.Runtime, Any]]:
    """A runtime without its own watchers, and a keeper whose watchers read SyscallFaults sources."""
    SyscallFaults.enospc.clear()
    SyscallFaults.broken.clear()
    SyscallFaults.injected.clear()
    rt = runtime_factory(make_config(watch=WATCH), watch=False)
    keeper = WatchKeeper.start(
        WatchParts(rt.config, rt.store, rt.metrics, scan_of(rt), source_factory=SyscallFaults)
    )
    yield rt, keeper
    keeper.stop()
    SyscallFaults.enospc.clear()


def test_enospc_from_inotify_add_watch_polls_and_rearms_with_backoff(
    faulty: tuple[scanguard.Runtime, Any], library: Path
) -> None:
    rt, keeper = faulty
    SyscallFaults.enospc.set()
    lib = rt.add_library(library)
    keeper.tell(Sync())
    wait_for(lambda: rt.get_library(lib.id).watch.reason == "watch_limit", SLACK, "watch_limit")
    assert rt.get_library(lib.id).watch.state == "polling"
    assert "fs.inotify.max_user_watches" in (rt.get_library(lib.id).watch.message or "")
    SyscallFaults.enospc.clear()  # the limit raised: the next re-arm succeeds
    wait_for(lambda: rt.get_library(lib.id).watch.state == "watching", SLACK, "watching again")
    kinds = [e.kind for e in watch_events(rt, lib.id)]
    assert kinds.count("watch.degraded") == 1
    assert kinds[-1] == "watch.recovered"
    assert rt.metrics.watch_fallbacks.labels("watch_limit")._value.get() == 1


def _watched_and_settled(rt: scanguard.Runtime, keeper: Any, library: Path) -> scanguard.Library:
    """A new library under the faulty runtime's keeper, its first catch-up scan done."""
    lib = rt.add_library(library)
    keeper.tell(Sync())
    settled(rt, lib.id)
    return lib


def test_an_event_queue_overflow_scans_the_whole_library_and_recovers(
    faulty: tuple[scanguard.Runtime, Any], library: Path
) -> None:
    rt, keeper = faulty
    lib = _watched_and_settled(rt, keeper, library)
    write(library / "album0" / "lost.flac")  # as if its event had been lost in the overflow
    SyscallFaults.injected.append(RawEvent(-1, OVERFLOW))
    wait_for(lambda: "album0/lost.flac" in files(rt, lib.id), SLACK, "the whole catch-up scan")
    catch_ups = [j for j in jobs(rt, lib.id) if j.trigger == "catch_up"]
    assert len(catch_ups) == 2
    assert catch_ups[-1].scope == ()
    wait_for(lambda: any(e.kind == "watch.recovered" for e in watch_events(rt, lib.id)), SLACK, "recovered")
    events = watch_events(rt, lib.id)
    assert [(e.kind, e.data["reason"]) for e in events] == [
        ("watch.degraded", "overflow"),
        ("watch.recovered", "overflow"),
    ]
    assert rt.get_library(lib.id).watch.state == "watching"


def test_a_crashed_watcher_is_restarted_with_a_catch_up_scan(
    faulty: tuple[scanguard.Runtime, Any], library: Path
) -> None:
    rt, keeper = faulty
    lib = _watched_and_settled(rt, keeper, library)
    first = keeper.ask(WatcherOf(lib.id))
    first.tell(Crash())
    wait_for(lambda: any(e.kind == "watch.recovered" for e in watch_events(rt, lib.id)), SLACK, "restarted")
    second = keeper.ask(WatcherOf(lib.id))
    assert second is not None
    assert second != first
    assert not first.is_alive()
    kinds = [(e.kind, e.data.get("reason")) for e in watch_events(rt, lib.id)]
    assert kinds == [("watch.degraded", "crashed"), ("watch.recovered", "crashed")]
    wait_for(lambda: len([j for j in jobs(rt, lib.id) if j.trigger == "catch_up"]) == 2, SLACK, "a catch-up")
    write(library / "after.flac")  # and it watches again
    wait_for(lambda: "after.flac" in files(rt, lib.id), SLACK, "a change after the restart")


def test_a_failing_event_reader_reaches_the_keeper_which_restarts_the_watcher(
    faulty: tuple[scanguard.Runtime, Any], library: Path
) -> None:
    rt, keeper = faulty
    lib = _watched_and_settled(rt, keeper, library)
    SyscallFaults.broken.set()
    wait_for(lambda: any(e.kind == "watch.recovered" for e in watch_events(rt, lib.id)), SLACK, "restarted")
    [degraded] = [e for e in watch_events(rt, lib.id) if e.kind == "watch.degraded"]
    assert degraded.data["reason"] == "crashed"
    assert "the inotify descriptor went bad" in degraded.data["message"]
    write(library / "after.flac")
    wait_for(lambda: "after.flac" in files(rt, lib.id), SLACK, "a change after the restart")


def test_a_root_that_goes_away_is_unavailable_with_nothing_missing_until_it_is_back(
    watching: Callable[..., scanguard.Runtime], library: Path, tmp_path: Path
) -> None:
    rt = watching()
    lib = rt.add_library(library)
    settled(rt, lib.id)
    before = files(rt, lib.id)
    count = len(jobs(rt, lib.id))
    away = tmp_path / "away"
    os.rename(library, away)  # unmounted, renamed, deleted: the root is not there
    wait_for(lambda: rt.get_library(lib.id).watch.state == "unavailable", SLACK, "unavailable")
    assert rt.get_library(lib.id).watch.reason == "root_unavailable"
    write(away / "album0" / "while_away.flac")
    time.sleep(SETTLE * 5)
    assert len(jobs(rt, lib.id)) == count
    assert files(rt, lib.id) == before
    os.rename(away, library)
    wait_for(lambda: rt.get_library(lib.id).watch.state == "watching", SLACK, "watching again")
    wait_for(lambda: "album0/while_away.flac" in files(rt, lib.id), SLACK, "the catch-up scan")
    kinds = [(e.kind, e.data.get("reason")) for e in watch_events(rt, lib.id)]
    assert kinds == [("watch.degraded", "root_unavailable"), ("watch.recovered", "root_unavailable")]


def _mount_tmpfs(path: Path) -> str | None:
    """Mount a tmpfs there; why not, or None."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "mounting a tmpfs needs root and mount(8)"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "tmpfs", str(path)], capture_output=True, text=True, check=False
    )
    return None if done.returncode == 0 else f"mount -t tmpfs failed: {done.stderr.strip()[:200]}"


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True, check=False)


def test_an_unmounted_root_is_unavailable_with_nothing_missing_and_watched_again_when_mounted(
    watching: Callable[..., scanguard.Runtime], tmp_path: Path
) -> None:
    root = tmp_path / "mnt"
    root.mkdir()
    why = _mount_tmpfs(root)
    if why is not None:
        pytest.skip(why)
    try:
        write(root / "disc" / "a.flac")
        rt = watching()
        lib = rt.add_library(root)
        settled(rt, lib.id)
        count = len(jobs(rt, lib.id))
        _umount(root)  # the bare, empty mount point stays
        wait_for(lambda: rt.get_library(lib.id).watch.state == "unavailable", SLACK, "unavailable")
        assert rt.get_library(lib.id).watch.reason == "root_unavailable"
        time.sleep(SETTLE * 5)  # proving that nothing happens: the empty mount point is not the library
        assert len(jobs(rt, lib.id)) == count
        assert files(rt, lib.id) == {"disc/a.flac": 100}
        assert _mount_tmpfs(root) is None
        write(root / "disc" / "a.flac")
        write(root / "disc" / "b.flac")
        wait_for(lambda: rt.get_library(lib.id).watch.state == "watching", SLACK, "watching again")
        wait_for(lambda: set(files(rt, lib.id)) == {"disc/a.flac", "disc/b.flac"}, SLACK, "the catch-up scan")
    finally:
        _umount(root)


def test_switching_watch_off_stops_the_watcher_and_on_starts_it_with_a_catch_up(
    watching: Callable[..., scanguard.Runtime], library: Path
) -> None:
    rt = watching()
    lib = rt.add_library(library)
    settled(rt, lib.id)
    off = rt.set_watch(lib.id, False)
    assert off.watch.enabled is False
    assert off.watch.state == "off"
    wait_for(lambda: rt.get_library(lib.id).watch.state == "off", SLACK, "off")
    write(library / "unwatched.flac")
    count = len(jobs(rt, lib.id))
    time.sleep(SETTLE * 5)
    assert len(jobs(rt, lib.id)) == count
    rt.set_watch(lib.id, True)
    wait_for(lambda: "unwatched.flac" in files(rt, lib.id), SLACK, "the catch-up scan after switching on")
    assert rt.get_library(lib.id).watch.state == "watching"


@pytest.mark.postgres
def test_two_instances_watch_a_library_once_and_the_survivor_takes_it_over(
    runtime_factory: Callable[..., scanguard.Runtime],
    make_config: Callable[..., scanguard.Config],
    pg_url: str,
    library: Path,
    db_query: Callable[[str, str], list[tuple[Any, ...]]],
) -> None:
    config = make_config(watch=WATCH)
    first, second = runtime_factory(config), runtime_factory(config)
    lib = first.add_library(library)
    wait_for(lambda: first.get_library(lib.id).watch.state == "watching", SLACK, "watching")
    settled(first, lib.id)
    [(owner,)] = db_query(pg_url, "SELECT watch_owner FROM libraries")
    assert owner in (first.instance, second.instance)
    wait_for(lambda: second.get_library(lib.id).watch.enabled, SLACK, "both instances know the library")
    write(library / "album0" / "once.flac")
    wait_for(lambda: "album0/once.flac" in files(first, lib.id), SLACK, "the change indexed")
    settled(first, lib.id, "watch")
    time.sleep(SETTLE * 5)  # proving that the other instance does not scan the same change again
    assert [j.trigger for j in jobs(first, lib.id)] == ["catch_up", "watch"]

    holder, survivor = (first, second) if owner == first.instance else (second, first)
    holder.stop()  # a clean stop gives the lease back: the survivor claims it at its next renewal
    wait_for(
        lambda: db_query(pg_url, "SELECT watch_owner FROM libraries") == [(survivor.instance,)],
        config.safeguards.lease_ttl + SLACK,
        "the survivor holding the watch",
    )
    wait_for(lambda: survivor.get_library(lib.id).watch.state == "watching", SLACK, "watching again")
    write(library / "album1" / "after.flac")
    wait_for(lambda: "album1/after.flac" in files(survivor, lib.id), SLACK * 2, "a change after the handover")


def test_a_storm_of_files_ends_exact_with_every_job_scope_bounded(
    watching: Callable[..., scanguard.Runtime], library: Path
) -> None:
    rt = watching()
    lib = rt.add_library(library)
    settled(rt, lib.id)
    expected = set(files(rt, lib.id))
    for i in range(300):  # more paths than one scope may hold, fewer than max_pending
        rel = f"storm{i // 100}/t{i:03d}.flac"
        write(library / rel)
        expected.add(rel)
    wait_for(lambda: set(files(rt, lib.id)) == expected, SLACK * 4, "the storm indexed exactly")
    wait_for(lambda: not rt.current_jobs(), SLACK, "an idle library")
    watch_jobs = [j for j in jobs(rt, lib.id) if j.trigger == "watch"]
    assert watch_jobs
    assert all(0 < len(j.scope) <= 100 for j in watch_jobs)
    assert all(j.status == "completed" for j in watch_jobs)
