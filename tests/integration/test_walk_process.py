"""The walk process (scanguard.walk_child) hands a scan exactly the entries of the walk in this process."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

import scanguard
from scanguard.actors import scan_job
from scanguard.config import load_config
from scanguard.walk import Listed, MediaRule, RootUnavailable, Walk
from scanguard.walk_child import WalkParams
from scanguard.walk_source import WalkProcess
from tests.support.trees import build_tree

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
        assert source.total(0.0) == sum(len(i) == 6 for i in expected)
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

    def recording(params: WalkParams, preload: list[str]) -> WalkProcess:
        started.append(params)
        return WalkProcess(params, preload)

    monkeypatch.setattr(scan_job, "WalkProcess", recording)
    rt = runtime_factory(make_config(scan={"walk_nice": 3}))
    job = rt.start_scan(rt.add_library(root).id)
    assert rt.wait_for_job(job.id, ("completed",), timeout=30).status == "completed"
    assert [p.nice for p in started] == [3]
