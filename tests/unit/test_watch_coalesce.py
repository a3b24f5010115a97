"""The coalescer: settle, max_delay, and never a file whose size still changes."""

from __future__ import annotations

import pytest

from scanguard.watching.coalesce import Coalescer, bounded_scope

pytestmark = pytest.mark.timeout(10)


def test_a_path_is_handed_on_once_it_was_quiet_for_settle() -> None:
    table: dict[str, int | None] = {"a.flac": 10}
    c = Coalescer(settle=1.0, max_delay=10.0, size_of=table.get)
    c.touch(["a.flac"], now=0.0)
    assert c.due(0.5) == []
    c.touch(["a.flac"], now=0.8)
    assert c.due(1.5) == []
    assert c.due(1.8) == ["a.flac"]
    assert len(c) == 0


def test_a_path_that_keeps_changing_is_handed_on_after_max_delay() -> None:
    table: dict[str, int | None] = {"a.flac": 10}
    c = Coalescer(settle=1.0, max_delay=3.0, size_of=table.get)
    now = 0.0
    handed: list[str] = []
    while now < 3.5 and not handed:
        c.touch(["a.flac"], now=now)  # touched (same size) every half second: never quiet
        now += 0.5
        handed = c.due(now)
    assert handed == ["a.flac"]
    assert now == pytest.approx(3.0)


def test_a_file_whose_size_still_changes_is_not_handed_on_even_after_max_delay() -> None:
    table: dict[str, int | None] = {"big.mkv": 0}
    c = Coalescer(settle=1.0, max_delay=2.0, size_of=table.get)
    c.touch(["big.mkv"], now=0.0)
    for step in range(1, 10):  # grows with no event at all (as over a network mount)
        table["big.mkv"] = step * 100
        assert c.due(step * 1.0) == []
    assert c.due(10.0) == ["big.mkv"]  # a settle after the size held still


def test_a_deleted_path_is_handed_on_after_settle() -> None:
    table: dict[str, int | None] = {"gone.mp3": 5}
    c = Coalescer(settle=1.0, max_delay=5.0, size_of=table.get)
    c.touch(["gone.mp3"], now=0.0)
    del table["gone.mp3"]
    c.touch(["gone.mp3"], now=0.1)
    assert c.due(1.2) == ["gone.mp3"]


def test_a_file_that_grows_with_every_event_waits_past_max_delay_until_it_stops() -> None:
    table: dict[str, int | None] = {"big.mkv": 0}
    c = Coalescer(settle=1.0, max_delay=2.0, size_of=table.get)
    now = 0.0
    while now < 6.0:  # grows, with an event, every 0.25 s
        table["big.mkv"] = int(now * 1000)
        c.touch(["big.mkv"], now=now)
        assert c.due(now) == []
        now += 0.25
    assert c.due(now + 0.5) == []
    assert c.due(now + 1.0) == ["big.mkv"]


def test_a_file_rewritten_in_place_at_the_same_size_is_handed_on_after_max_delay() -> None:
    table: dict[str, int | None] = {"tags.flac": 500}
    c = Coalescer(settle=1.0, max_delay=2.0, size_of=table.get)
    now, handed = 0.0, []
    while not handed and now < 5:
        c.touch(["tags.flac"], now=now)
        now += 0.25
        handed = c.due(now)
    assert handed == ["tags.flac"]
    assert now == pytest.approx(2.0)


def test_a_scope_of_more_paths_than_the_limit_is_narrowed_to_their_folders() -> None:
    few = ["a/1.flac", "b/2.flac"]
    assert bounded_scope(few, limit=2) == ("a/1.flac", "b/2.flac")
    many = [f"artist/album{i // 10}/{i}.flac" for i in range(50)]
    assert bounded_scope(many, limit=10) == tuple(f"artist/album{i}" for i in range(5))
    assert bounded_scope(many, limit=3) == ("artist",)
    assert bounded_scope([f"{i}.flac" for i in range(5)], limit=3) is None  # only the root is left
