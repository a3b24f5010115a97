"""A walk started ahead of its scan (issue 18, item 1): `scanguard scan` starts the walk it most likely needs
while it imports the runtime; the scan that needs exactly that walk takes it, any other stops it, and the
walk's frames wait (bounded) for a scan that does not read yet."""

from __future__ import annotations

import marshal
import os
import threading
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from scanguard.config import load_config
from scanguard.walk import Listed, MediaRule, Walk
from scanguard.walk_child import FrameWriter, WalkParams
from scanguard.walk_source import drop_walks_ahead, take_walk, walk_ahead
from tests.integration.test_walk_process import _drain
from tests.support.trees import build_tree

pytestmark = [pytest.mark.timeout(60)]

RULE = MediaRule.from_config(load_config().scan)


def _params(root: Path) -> WalkParams:
    return WalkParams(str(root), RULE.types, None, False, 1, (), False)


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_the_scan_whose_walk_was_started_ahead_takes_it_with_what_it_found_meanwhile(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    build_tree(root, n_media=400, n_other=20)
    ahead = walk_ahead(_params(root), [])
    source, taken = take_walk(_params(root))
    try:
        assert taken
        assert source is ahead
        assert _drain(source, limit=100) == list(Walk(str(root), RULE).listed())
    finally:
        source.close()


@pytest.mark.parametrize(
    "other",
    [
        {"after": "Artist 002/"},  # a resume from its checkpoint
        {"count": True},  # a library without the count of an earlier scan
        {"walkers": 4},
    ],
    ids=["resumed", "counted", "walkers"],
)
def test_a_scan_that_walks_otherwise_stops_the_walk_ahead_and_walks_its_own(
    tmp_path: Path, other: dict[str, object]
) -> None:
    root = tmp_path / "lib"
    build_tree(root, n_media=400, n_other=20)
    ahead = walk_ahead(_params(root), [])
    pid = ahead.pid
    params = replace(_params(root), **other)  # type: ignore[arg-type]
    source, taken = take_walk(params)
    try:
        assert not taken
        assert source is not ahead
        assert _gone(pid), "the walk ahead was left running"
        assert _drain(source, limit=100) == list(Walk(str(root), RULE, after=params.after).listed())
    finally:
        source.close()


def test_a_scan_that_walks_in_its_own_thread_stops_the_walk_ahead(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    build_tree(root, n_media=50)
    pid = walk_ahead(_params(root), []).pid
    drop_walks_ahead()
    assert _gone(pid)
    source, taken = take_walk(_params(root))  # nothing is left ahead for a later scan
    source.close()
    assert not taken


def _items(n: int) -> list[Listed]:
    return [(f"Artist {i // 200:03d}/Album/{i:05d} - Track.flac", i, 1.0, "audio", 1, i) for i in range(n)]


def _read_frames(fd: int) -> list[tuple[str, list[Listed] | None]]:
    """Every frame on the pipe up to the end frame, as the scan's side reads them."""
    frames: list[tuple[str, list[Listed] | None]] = []
    buffer = b""
    while not frames or frames[-1][0] != "end":
        chunk = os.read(fd, 1 << 16)
        assert chunk, "the pipe ended before the end frame"
        buffer += chunk
        while len(buffer) >= 4 and len(buffer) - 4 >= (size := int.from_bytes(buffer[:4], "big")):
            frames.append(marshal.loads(buffer[4 : 4 + size]))  # noqa: S302 - our own frames
            buffer = buffer[4 + size :]
    return frames


def _send_all(writer: FrameWriter, items: list[Listed], queued: threading.Event) -> threading.Thread:
    def send() -> None:
        for start in range(0, len(items), 512):
            writer.send("items", items[start : start + 512])
        queued.set()
        writer.send("end", None)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_a_walk_runs_ahead_of_a_scan_that_does_not_read_by_far_more_than_a_pipe() -> None:
    """~1 MB of entries (a pipe holds 64 kB): all of it is handed over while nobody reads; the end waits
    for the reader, which then gets every frame in order."""
    items = _items(20_000)
    read_fd, write_fd = os.pipe()
    try:
        queued = threading.Event()
        thread = _send_all(FrameWriter(write_fd, ahead=4 << 20), items, queued)
        assert queued.wait(10), "the walk waited for a reader within its bound"
        frames = _read_frames(read_fd)
        thread.join(10)
        assert not thread.is_alive()
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert frames[-1] == ("end", None)
    assert [item for _, chunk in frames[:-1] for item in chunk or ()] == items


@pytest.mark.parametrize("ahead", [0, 128 << 10], ids=["a-service-walk-only-its-pipe", "past-its-bound"])
def test_past_its_bound_the_walk_waits_for_its_scan(ahead: int) -> None:
    """A walk in the service (no bound: a pause throws away what it walked ahead) goes no further than its
    pipe; a walk started ahead no further than its bound."""
    items = _items(20_000)
    read_fd, write_fd = os.pipe()
    try:
        queued = threading.Event()
        thread = _send_all(FrameWriter(write_fd, ahead=ahead), items, queued)
        assert not queued.wait(0.5), "the walk ran past its bound with nobody reading"  # settle time
        frames = _read_frames(read_fd)
        assert queued.is_set()
        thread.join(10)
        assert not thread.is_alive()
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert [item for _, chunk in frames[:-1] for item in chunk or ()] == items
