"""The soak's cross-instance event invariant: an event committed by one live instance appears on every other
live instance's event stream within BOUND seconds (DESIGN §8).

An event's reference time is the first moment anyone knew it committed: its first arrival on any slot's
stream (its writer's own stream publishes it right after the commit), or, for a probe, the moment the API
call that wrote it answered, whichever is earlier. A slot counts as live while the soak says so (from the
moment it is back after a fault — ready, its listener connected, our stream to it open — until the next
fault that takes it away) and its stream is open. An event must reach a slot within BOUND of the
start of the slot's first live stretch, at or after the reference time, that lasts BOUND: within BOUND of
the reference when the slot was live then (that is the lag), within BOUND of its return otherwise (the
catch-up by Last-Event-ID replay). One that comes after its deadline is late (with its lag); one still
absent LATE_WINDOW after it is missed; either is a Miss, which fails the soak.

Not required of a slot, and counted as exempt, only if missing: events whose transaction began before that
slot's stream first opened or within GRACE of a reconnect and that committed after it (in flight while the
server read the stream's starting point), and events with an id below the Last-Event-ID of a resumed
stream that committed as the previous connection ended or after (ids are handed out before commit, so they
commit out of order, and a resume after the highest id seen cannot replay them). Both are limits of the
stream's id-based resume, not of the propagation: the soak reports how often it met them.
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from tests.chaos.taps import Seen, Segment, TapRecord

BOUND = 2.0
GRACE = 1.0
LATE_WINDOW = 5.0  # past its deadline, an event still absent is awaited this long more: late, or missed
FAULT_CONTEXT = 10.0  # an event within this many seconds after a fault is counted under that fault's kind
STEADY = "steady"


@dataclass(frozen=True, slots=True)
class Probe:
    """An event the soak wrote on purpose after a fault: which fault, and when the call that wrote it answered."""

    fault: str
    committed: float


@dataclass(frozen=True, slots=True)
class Miss:
    """An event that did not reach a live slot in time: late (with its lag) or missing at the deadline."""

    what: str
    event_id: int
    kind: str
    slot: str
    fault: str
    lag: float | None
    detail: str = ""  # the event's and the slot's times, in seconds since the slot's first connection


@dataclass(slots=True)
class Tally:
    """What the judge concluded so far."""

    lags: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    probe_lags: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    catch_ups: int = 0
    unattributed: set[int] = field(default_factory=set)  # events whose writer is none of the slots' processes
    exempt: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    misses: list[Miss] = field(default_factory=list)


def _intersect(
    a: list[tuple[float, float | None]], b: list[tuple[float, float | None]]
) -> list[tuple[float, float | None]]:
    out: list[tuple[float, float | None]] = []
    for a0, a1 in a:
        for b0, b1 in b:
            start = max(a0, b0)
            ends = [e for e in (a1, b1) if e is not None]
            end = min(ends) if ends else None
            if end is None or end > start:
                out.append((start, end))
    return sorted(out)


def _quantiles(values: list[float]) -> str:
    if not values:
        return "n=0"
    ms = sorted(v * 1000 for v in values)
    p50, p99 = (
        (statistics.quantiles(ms, n=100, method="inclusive")[i] for i in (49, 98))
        if len(ms) > 1
        else (ms[0], ms[0])
    )
    return f"n={len(ms)} p50={p50:.0f}ms p99={p99:.0f}ms max={ms[-1]:.0f}ms"


class Heard(Protocol):
    """Where the judge reads what the streams delivered (StreamTaps, or a fixed record in its own tests)."""

    def read(self) -> TapRecord: ...


class Propagation:
    """Owns the slots' live stretches, the faults and the probes, and judges every event the taps heard."""

    def __init__(self, taps: Heard, names: list[str], bound: float = BOUND) -> None:
        self.taps = taps
        self.names = names
        self.bound = bound
        self._lock = threading.Lock()
        self._live: list[list[tuple[float, float | None]]] = [[] for _ in names]
        self._pids: dict[int, int] = {}
        self._faults: list[tuple[float, str]] = []
        self._probes: dict[int, Probe] = {}
        self._settled: set[tuple[int, int]] = set()
        self._probing = 0
        self._judging = threading.Lock()
        self.tally = Tally()

    # ---- what the soak tells it -------------------------------------------------------------------

    def spawned(self, slot: int, pid: int) -> None:
        """A new process of the slot: its events name it by pid."""
        with self._lock:
            self._pids[pid] = slot

    def back(self, slot: int, now: float) -> None:
        with self._lock:
            stretches = self._live[slot]
            if not stretches or stretches[-1][1] is not None:
                stretches.append((now, None))

    def away(self, slot: int, now: float) -> None:
        with self._lock:
            stretches = self._live[slot]
            if stretches and stretches[-1][1] is None:
                stretches[-1] = (stretches[-1][0], now)

    def is_live(self, slot: int) -> bool:
        with self._lock:
            return bool(self._live[slot]) and self._live[slot][-1][1] is None

    def fault(self, kind: str, now: float) -> None:
        with self._lock:
            self._faults.append((now, kind))

    @contextlib.contextmanager
    def probing(self) -> Iterator[None]:
        """While a probe is being written, library events wait for it to say which of them are probes."""
        with self._lock:
            self._probing += 1
        try:
            yield
        finally:
            with self._lock:
                self._probing -= 1

    def probe(self, event_id: int, fault: str, committed: float) -> None:
        with self._lock:
            self._probes[event_id] = Probe(fault, committed)

    def arrived_everywhere(self, event_id: int, slots: list[int]) -> bool:
        arrivals = self.taps.read().arrivals
        return all(event_id in arrivals[slot] for slot in slots)

    # ---- the judge --------------------------------------------------------------------------------

    def check(
        self, now: float, unseen: Callable[[TapRecord], dict[int, Seen]] | None = None
    ) -> tuple[list[Miss], int]:
        """Judge every (event, slot) whose deadline passed or whose event arrived: (new misses, undecided).

        `unseen` adds events no tap heard (the final check reads the events table), which every slot must
        then have missed."""
        with self._judging:
            return self._check(now, unseen)

    def _check(
        self, now: float, unseen: Callable[[TapRecord], dict[int, Seen]] | None
    ) -> tuple[list[Miss], int]:
        with self._lock:
            live = [list(s) for s in self._live]
            pids, faults, probes = dict(self._pids), list(self._faults), dict(self._probes)
            probing = self._probing > 0
        record = self.taps.read()
        events = dict(record.events)
        if unseen is not None:
            events.update(unseen(record))
        new: list[Miss] = []
        undecided = 0
        for event_id, seen in sorted(events.items()):
            writer = pids.get(_pid_of(seen.instance))
            if writer is None:
                self.tally.unattributed.add(event_id)
            probe = probes.get(event_id)
            if probe is None and probing and seen.kind.startswith("library."):
                undecided += 1
                continue
            reference = seen.first if probe is None else min(seen.first, probe.committed)
            fault = probe.fault if probe is not None else _fault_before(faults, reference)
            for slot, name in enumerate(self.names):
                if slot == writer or (event_id, slot) in self._settled:
                    continue
                verdict = self._judge(event_id, seen, reference, record, slot, live[slot], now)
                if verdict is None:
                    undecided += 1
                    continue
                self._settled.add((event_id, slot))
                what, value = verdict
                if what == "lag":
                    assert value is not None
                    (self.tally.probe_lags if probe is not None else self.tally.lags)[fault].append(value)
                elif what == "catch_up":
                    self.tally.catch_ups += 1
                elif what in ("late", "late_catch_up", "missed"):
                    detail = _detail(seen, reference, record.segments[slot], live[slot])
                    new.append(Miss(what, event_id, seen.kind, name, fault, value, detail))
                else:
                    self.tally.exempt[what] += 1
        self.tally.misses.extend(new)
        return new, undecided

    def _judge(
        self,
        event_id: int,
        seen: Seen,
        reference: float,
        record: TapRecord,
        slot: int,
        live: list[tuple[float, float | None]],
        now: float,
    ) -> tuple[str, float | None] | None:
        """('lag'|'catch_up'|'late'|'missed'|an exemption, value), or None while undecided."""
        segments = record.segments[slot]
        arrived = record.arrivals[slot].get(event_id)
        stretches = _intersect(live, [(s.start, s.end) for s in segments])
        deadline, live_then = None, False
        for start, end in stretches:
            begin = max(start, reference)
            if end is None or end >= begin + self.bound:
                deadline, live_then = begin + self.bound, start <= reference
                break
        if arrived is not None:
            if (
                deadline is None
            ):  # the slot was not live for a whole bound after it: was it live until it came?
                live_then = any(s <= reference and (e is None or e >= arrived) for s, e in stretches)
            if deadline is not None and arrived > deadline:
                return ("late" if live_then else "late_catch_up", arrived - reference)
            return ("lag", arrived - reference) if live_then else ("catch_up", None)
        if deadline is None or now < deadline + LATE_WINDOW:
            return None
        exemption = _exemption(event_id, seen, reference, deadline, segments)
        return (exemption, None) if exemption else ("missed", None)

    def summary(self) -> str:
        t = self.tally
        record = self.taps.read()
        connections = {name: len(record.segments[slot]) for slot, name in enumerate(self.names)}
        by_fault = "; ".join(f"{k}: {_quantiles(v)}" for k, v in sorted(t.lags.items()))
        probes = "; ".join(f"{k}: {_quantiles(v)}" for k, v in sorted(t.probe_lags.items()))
        every = [v for vs in t.lags.values() for v in vs] + [v for vs in t.probe_lags.values() for v in vs]
        return (
            f"propagation bound={self.bound:g}s events lag {_quantiles(every)} | by fault before it: {by_fault} "
            f"| probes after each fault: {probes} | catch-ups={t.catch_ups} exempt={dict(t.exempt)} "
            f"unattributed={len(t.unattributed)} misses={len(t.misses)} | stream connections={connections} "
            f"error frames={record.errors}"
        )


def _exemption(
    event_id: int, seen: Seen, reference: float, deadline: float, segments: list[Segment]
) -> str | None:
    """Why a slot could not have had this event by the stream's contract, or None (then it is a miss).

    Only a reconnect before the deadline counts: a slot that was live for a whole bound before it should
    have had the event on its earlier connection. An id below the resume point is excused only for an
    event that committed as the earlier connection ended (within GRACE) or after: the earlier stream, open
    and live, owed it otherwise."""
    if not segments or seen.at < segments[0].start + GRACE:
        return "before_stream"
    for previous, segment in itertools.pairwise(segments):
        if segment.start > deadline:
            break
        resumed, ended = segment.resumed_after, previous.end
        if resumed is not None and event_id <= resumed and ended is not None and reference >= ended - GRACE:
            return "below_resume_id"
        if seen.at < segment.start + GRACE and reference >= segment.start:
            return "in_flight_at_reconnect"
    return None


def _detail(
    seen: Seen, reference: float, segments: list[Segment], live: list[tuple[float, float | None]]
) -> str:
    zero = segments[0].start if segments else reference

    def t(value: float | None) -> str:
        return "open" if value is None else f"{value - zero:+.2f}"

    return (
        f"writer={seen.instance} began={t(seen.at)} reference={t(reference)} "
        f"live={[(t(a), t(b)) for a, b in live]} "
        f"connections={[(t(s.start), t(s.end), s.resumed_after) for s in segments]}"
    )


def _pid_of(instance: str) -> int:
    try:
        return int(instance.rsplit(":", 3)[1])
    except (IndexError, ValueError):
        return -1


def _fault_before(faults: list[tuple[float, str]], reference: float) -> str:
    kind = STEADY
    for at, fault in faults:
        if at > reference:
            break
        if reference - at <= FAULT_CONTEXT:
            kind = fault
    return kind
