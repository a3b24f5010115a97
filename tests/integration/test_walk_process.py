"""The walk process (scanguard.walk_child) hands a scan exactly the entries of the walk in this process."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil
import pytest

from scanguard.config import load_config
from scanguard.walk import Listed, MediaRule, RootUnavailable, Walk
from scanguard.walk_child import WalkParams
from scanguard.walk_source import WalkProcess
from tests.support.trees import build_tree

pytestmark = [pytest.mark.timeout(60)]

RULE = MediaRule.from_config(load_config().scan)


def _params(root: Path, *, after: str | None = None, follow: bool = False, count: bool = False) -> WalkParams:
    return WalkParams(str(root), RULE.types, after, follow, 1, (), count, os.getpid())


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
