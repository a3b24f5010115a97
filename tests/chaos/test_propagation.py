"""The soak's event-propagation judge on fixed records: it fails what is late or lost, and only that."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.chaos.propagation import Propagation
from tests.chaos.taps import Seen, Segment, TapRecord

pytestmark = pytest.mark.timeout(10)
T0 = 1_000_000.0
WRITER = "host:101:1:n"  # slot 0's process


@dataclass
class Fixed:
    """A TapRecord the test writes by hand."""

    record: TapRecord

    def read(self) -> TapRecord:
        return self.record


def _judge(
    arrivals: dict[int, float], segments: list[Segment], event_at: float = T0 + 10
) -> tuple[Propagation, Fixed]:
    """Slot 0 writes event 7 at `event_at` (seen on its own stream at once); slot 1's stream is as given."""
    record = TapRecord(
        [{7: event_at}, arrivals],
        {7: Seen(event_at, "job.paused", WRITER, event_at)},
        [[Segment("a", T0, None)], segments],
    )
    heard = Fixed(record)
    judge = Propagation(heard, ["i0", "i1"])
    judge.spawned(0, 101)
    judge.back(0, T0)
    judge.back(1, T0)
    return judge, heard


def test_an_event_on_the_other_stream_within_the_bound_is_a_lag_and_no_miss() -> None:
    judge, _ = _judge({7: T0 + 10.3}, [Segment("b", T0, None)])
    misses, undecided = judge.check(T0 + 20)
    assert (misses, undecided) == ([], 0)
    assert judge.tally.lags["steady"] == [pytest.approx(0.3)]


def test_an_event_later_than_the_bound_on_a_live_stream_is_reported_late_with_its_fault() -> None:
    judge, _ = _judge({7: T0 + 12.5}, [Segment("b", T0, None)])
    judge.fault("pg_terminate", T0 + 9)
    misses, _ = judge.check(T0 + 20)
    assert [(m.what, m.event_id, m.slot, m.fault, round(m.lag or 0, 1)) for m in misses] == [
        ("late", 7, "i1", "pg_terminate", 2.5)
    ]


def test_an_event_that_never_reaches_a_live_stream_is_missed_once_its_deadline_passed() -> None:
    judge, _ = _judge({}, [Segment("b", T0, None)])
    assert judge.check(T0 + 11) == ([], 1)  # not yet: the bound has not passed
    assert judge.check(T0 + 14) == ([], 1)  # past it, but it may still come late (then it is late)
    misses, undecided = judge.check(T0 + 17.1)
    assert [(m.what, m.event_id, m.slot) for m in misses] == [("missed", 7, "i1")]
    assert undecided == 0
    assert judge.check(T0 + 30) == ([], 0)  # reported once


def test_a_slot_away_when_the_event_committed_must_catch_up_within_the_bound_of_its_return() -> None:
    judge, heard = _judge({}, [Segment("b", T0, None, end=T0 + 9), Segment("b2", T0 + 14, 6)])
    judge.away(1, T0 + 9)
    assert judge.check(T0 + 13) == ([], 1)  # away: nothing is due yet
    judge.back(1, T0 + 15)
    heard.record.arrivals[1][7] = T0 + 14.1  # replayed after Last-Event-ID 6
    assert judge.check(T0 + 20) == ([], 0)
    assert judge.tally.catch_ups == 1


def test_a_slot_that_returns_and_never_replays_the_event_misses_it() -> None:
    judge, _ = _judge({}, [Segment("b", T0, None, end=T0 + 9), Segment("b2", T0 + 14, 6)])
    judge.away(1, T0 + 9)
    judge.back(1, T0 + 15)
    misses, _ = judge.check(T0 + 22.5)
    assert [(m.what, m.slot) for m in misses] == [("missed", "i1")]


def test_an_event_below_the_resume_id_that_the_earlier_open_stream_owed_is_still_a_miss() -> None:
    judge, _ = _judge({}, [Segment("b", T0, None, end=T0 + 11.5), Segment("b2", T0 + 14, 8)])
    judge.away(1, T0 + 11.5)
    judge.back(1, T0 + 15)
    misses, _ = judge.check(T0 + 25)
    assert [(m.what, m.slot) for m in misses] == [("missed", "i1")]


def test_an_event_below_the_resume_id_or_in_flight_at_a_reconnect_is_exempt_and_counted() -> None:
    below, _ = _judge({}, [Segment("b", T0, None, end=T0 + 9), Segment("b2", T0 + 14, 8)])
    below.away(1, T0 + 9)
    below.back(1, T0 + 15)
    in_flight, _ = _judge({}, [Segment("b", T0, None, end=T0 + 9.5), Segment("b2", T0 + 9.8, 6)], T0 + 10)
    assert below.check(T0 + 25) == ([], 0)
    assert in_flight.check(T0 + 25) == ([], 0)
    assert dict(below.tally.exempt) == {"below_resume_id": 1}
    assert dict(in_flight.tally.exempt) == {"in_flight_at_reconnect": 1}


def test_the_writers_own_stream_is_not_judged_and_a_probe_is_measured_from_its_call_answering() -> None:
    judge, _ = _judge({7: T0 + 10.4}, [Segment("b", T0, None)])
    judge.probe(7, "kill9", T0 + 9.9)
    judge.check(T0 + 20)
    assert judge.tally.probe_lags["kill9"] == [pytest.approx(0.5)]
    assert judge.tally.lags == {}
