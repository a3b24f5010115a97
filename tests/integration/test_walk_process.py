"""The walk process (scanguard.walk_child) hands a scan exactly the entries of the walk in this process."""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import psutil
import pytest

import scanguard
from scanguard.actors import scan_job
from scanguard.config import load_config
from scanguard.walk import Listed, MediaRule, RootUnavailable, Walk
from scanguard.walk_child import CountAnswer, CountProcess, WalkParams
from scanguard.walk_source import WalkProcess
from tests.support.hostproc import alive
from tests.support.trees import build_tree
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(60)]

RULE = MediaRule.from_config(load_config().scan)


def _params(root: Path, *, after: str | None = None, follow: bool = False, count: bool = False) -> WalkParams:
    return WalkParams(str(root), RULE.types, after, follow, 1, (), count)


def _drain(source: WalkProcess, limit: int = 7) -> list[Listed]:
    cancel = threading.Event()
    items: list[Listed] = []
    done = False
    while not done:
        stretch, done = source.take(limit, 1.0, cancel)
        assert stretch or done, "an empty stretch before the end"
        assert len(stretch) <= limit
        items += stretch
    return items


@pytest.mark.parametrize("follow", [False, True], ids=["links-unfollowed", "links-followed"])
def test_the_walk_process_yields_the_walk_of_this_process_in_stretches_and_counts_it(
    tmp_path: Path, follow: bool
) -> None:
    root = tmp_path / "lib"
    build_tree(root, n_media=300, n_other=20)
    expected = list(Walk(str(root), RULE, follow_symlinks=follow).listed())
    source = WalkProcess(_params(root, follow=follow, count=True))
    try:
        assert _drain(source) == expected
        assert source.total(10.0) == sum(len(i) == 6 for i in expected)
    finally:
        source.close()
    after = expected[len(expected) // 2][0]
    source = WalkProcess(_params(root, after=after, follow=follow))
    try:
        assert _drain(source) == list(Walk(str(root), RULE, after=after, follow_symlinks=follow).listed())
    finally:
        source.close()


def test_the_walk_process_is_forked_by_the_forkserver_with_its_module_already_imported(
    tmp_path: Path,
) -> None:
    """No interpreter start-up per walk (a resume starts one): the forkserver, which imported
    scanguard.walk_child once, forks it, and the walk process answers as any other."""
    root = tmp_path / "lib"
    build_tree(root, n_media=3000, symlinks=False)  # more than its pipe holds: it waits to be read
    source = WalkProcess(_params(root), ["scanguard.walk_child"])
    try:
        walk = psutil.Process(source.pid)
        forkserver = walk.parent()
        assert forkserver is not None
        assert "multiprocessing.forkserver" in " ".join(forkserver.cmdline())
        assert forkserver.ppid() == os.getpid()
        assert len(_drain(source)) == len(list(Walk(str(root), RULE).listed()))
    finally:
        source.close()


def test_a_missing_root_is_reported_by_the_walk_process_as_root_unavailable(tmp_path: Path) -> None:
    source = WalkProcess(_params(tmp_path / "gone"))
    try:
        with pytest.raises(RootUnavailable):
            _drain(source)
    finally:
        source.close()


def test_closing_a_walk_process_that_nobody_reads_ends_it_at_once(tmp_path: Path) -> None:
    """A stop is bounded: the walk process, blocked on its full pipe, is killed and reaped by close."""
    root = tmp_path / "lib"
    build_tree(root, n_media=3000, symlinks=False)
    source = WalkProcess(_params(root))
    proc = psutil.Process(source.pid)
    source.take(1, 1.0, threading.Event())  # it is walking
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 2.0
    assert not proc.is_running()


def _nice_of(pid: int) -> int:
    """A process's nice value, from /proc (readable until it is reaped, even once it exited)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_the_walk_process_runs_walk_nice_below_the_scan_that_started_it(tmp_path: Path) -> None:
    """Its CPU priority is lowered by `nice` before it walks: on a busy machine the scan's writes and the
    admin API come first."""
    root = tmp_path / "lib"
    build_tree(root, n_media=50)
    params = WalkParams(str(root), RULE.types, None, False, 1, (), False, nice=7)
    source = WalkProcess(params)
    try:
        assert source.take(1, 5.0, threading.Event())[0], "it walked (after lowering its priority)"
        assert _nice_of(source.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 7
    finally:
        source.close()


def test_a_scan_hands_its_walk_process_the_configured_walk_nice(
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`[scan] walk_nice` reaches the walk process of a whole-library scan."""
    root = tmp_path / "lib"
    build_tree(root, n_media=40)
    started: list[WalkParams] = []

    def recording(params: WalkParams, preload: list[str]) -> tuple[WalkProcess, bool]:
        started.append(params)
        return WalkProcess(params, preload), False

    monkeypatch.setattr(scan_job, "take_walk", recording)
    rt = runtime_factory(make_config(scan={"walk_nice": 3}))
    job = rt.start_scan(rt.add_library(root).id)
    assert rt.wait_for_job(job.id, ("completed",), timeout=30).status == "completed"
    assert [p.nice for p in started] == [3]


def _answer_pipe() -> tuple[CountAnswer, Connection]:
    """A count's answer pipe: its receiving end (the scan's) and its sending end (handed to the count)."""
    receiving, sending = multiprocessing.Pipe(duplex=False)
    return CountAnswer(receiving), sending


def _stopped(pid: int) -> bool:
    return psutil.Process(pid).status() == psutil.STATUS_STOPPED


def test_the_counting_pass_runs_in_a_process_of_its_own_and_counts_what_the_walk_finds(
    tmp_path: Path,
) -> None:
    """A full scan's count lists the tree beside the walk on another core: forked by the process that
    walks, it answers on its own pipe with the walk's media count, then ends."""
    root = tmp_path / "lib"
    build_tree(root, n_media=400, n_other=30)
    answer, sending = _answer_pipe()
    count = CountProcess(str(root), RULE.media_type, follow_symlinks=False, walkers=1, answer=sending)
    try:
        counter = psutil.Process(count.pid)
        assert count.pid != os.getpid()
        assert counter.ppid() == os.getpid()
        assert answer.wait(10.0) == sum(len(i) == 6 for i in Walk(str(root), RULE).listed())
        assert count.join(10.0), "it ended once it had answered"
        with pytest.raises(psutil.NoSuchProcess):  # reaped by join, not left a zombie
            counter.status()
    finally:
        count.close()
        answer.close()


def test_closing_a_count_that_is_still_counting_kills_and_reaps_it_at_once(tmp_path: Path) -> None:
    """A stop is bounded: a count stopped in its listing (SIGSTOP, as on a hung mount) is killed and reaped
    by close, and its total is unknown."""
    root = tmp_path / "lib"
    build_tree(root, n_media=50)
    answer, sending = _answer_pipe()
    count = CountProcess(str(root), RULE.media_type, follow_symlinks=False, walkers=1, answer=sending)
    os.kill(count.pid, signal.SIGSTOP)
    started = time.monotonic()
    count.close()
    assert time.monotonic() - started < 2.0
    assert not alive({count.pid})
    assert answer.wait(1.0) is None, "no total: the answer's pipe ended without one"


def test_a_count_whose_walk_process_is_killed_dies_with_it(tmp_path: Path) -> None:
    """kill -9 of the walk process (the count's parent) kills a count stopped in its listing: the
    parent-death signal, taken before it counts."""
    root = tmp_path / "lib"
    build_tree(root, n_media=50)
    ready = tmp_path / "count.pid"
    walker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import multiprocessing, signal, sys\n"
            "from scanguard.walk_child import CountProcess\n"
            "from tests.integration.test_walk_process import _stopped_once_counting\n"
            "_, sending = multiprocessing.Pipe(duplex=False)\n"
            "count = CountProcess(\n"
            "    sys.argv[1], _stopped_once_counting, follow_symlinks=False, walkers=1, answer=sending\n"
            ")\n"
            "open(sys.argv[2], 'w').write(str(count.pid))\n"
            "signal.pause()  # until killed\n",
            str(root),
            str(ready),
        ],
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        counter = wait_for(
            lambda: ready.exists() and ready.read_text() and int(ready.read_text()),
            20,
            "the walk process to fork its count",
        )
        wait_for(lambda: _stopped(counter), 20, "the count to stop itself in its listing")
        walker.kill()
        walker.wait(10)
        wait_for(lambda: not alive({counter}), 20, "the count to die with its walk process")
    finally:
        if walker.poll() is None:
            walker.kill()
            walker.wait(10)


def _stopped_once_counting(name: str) -> str | None:
    """The media rule of a count that stops itself (SIGSTOP) at its first name: by then its parent-death
    signal is set, and only a signal that kills can end it."""
    os.kill(os.getpid(), signal.SIGSTOP)
    return RULE.media_type(name)


def test_the_count_does_not_hold_the_walk_s_pipe_open(tmp_path: Path) -> None:
    """The scan sees the end of its walk's pipe when the walk process is gone, even while the count it
    forked still runs (here: stopped in its listing)."""
    root = tmp_path / "lib"
    build_tree(root, n_media=50)
    read, write = os.pipe()
    answer, sending = _answer_pipe()
    count = CountProcess(
        str(root),
        _stopped_once_counting,
        follow_symlinks=False,
        walkers=1,
        answer=sending,
        inherited=(write,),
    )
    try:
        wait_for(lambda: _stopped(count.pid), 10, "the count to stop itself in its listing")
        os.close(write)  # the walk process's own end: now only a count that kept it would hold it
        assert select.select([read], [], [], 5.0)[0], "the pipe's end is seen"
        assert os.read(read, 1) == b""
    finally:
        count.close()
        answer.close()
        os.close(read)


def test_the_count_reaches_the_scan_while_the_walk_s_entries_wait_in_its_pipe(tmp_path: Path) -> None:
    """The progress total is not queued behind what the walk ran ahead with: a scan that has read only
    its first entries (a slow scan: its pipe is full) already has the count."""
    root = tmp_path / "lib"
    build_tree(root, n_media=4000, symlinks=False)  # more than the walk's pipe holds
    source = WalkProcess(_params(root, count=True))
    try:
        first, done = source.take(1, 5.0, threading.Event())
        assert first
        assert not done
        assert source.total(10.0) == sum(len(i) == 6 for i in Walk(str(root), RULE).listed())
        assert not source.take(1, 5.0, threading.Event())[1], "the walk's entries are still waiting"
    finally:
        source.close()
