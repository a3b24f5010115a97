"""Counting what an operation costs on its critical path: actor asks, transactions and SQL statements.

`Budget` patches, for the length of a `with` block, pykka's `ActorRef.ask`, the Database's `read`,
`aread` and `write`, and a statement listener on the engines, and attributes each to the *phase* of the
thread it happens on: the caller (the admin API's event loop and bridge threads, or the test's own
thread), the message a LibraryActor is handling (StartScan, PauseScan, _PostValidate, ...), or a scan
(ScanActor threads). Writes run on the store's writer thread, so they are attributed by the asker's
phase: every `Write` asked is one write transaction; its statements are counted on the writer's thread.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pykka
import sqlalchemy as sa
from sqlalchemy import event

from scanguard.actors.library import LibraryActor
from scanguard.actors.store import Write
from scanguard.store.database import Database
from scanguard.store.reads import Read

CALLER = "caller"
READER_THREADS = "scanguard-read"  # the Database's threads for an event loop's reads on SQLite
SCAN = "scan"


@dataclass
class Cost:
    """One phase's counts."""

    asks: list[str] = field(default_factory=list)  # message types asked
    writes: list[str] = field(default_factory=list)  # write transactions, by operation
    reads: list[str] = field(default_factory=list)  # read transactions, by operation
    statements: Counter[str] = field(default_factory=Counter)  # by operation

    @property
    def transactions(self) -> int:
        return len(self.writes) + len(self.reads)

    def statement_total(self) -> int:
        return sum(self.statements[op] for op in {*self.writes, *self.reads})

    def line(self) -> str:
        return (
            f"{len(self.asks)} asks, {len(self.writes)} write + {len(self.reads)} read transactions, "
            f"{self.statement_total()} statements"
        )


class Budget:
    """Owns the patches and the per-phase counts while it is active."""

    def __init__(
        self, caller_threads: tuple[str, ...] = ("scanguard-aio", "test-http", "MainThread")
    ) -> None:
        self._callers = caller_threads
        self._local = threading.local()
        self._writer = threading.local()  # the write the store's writer thread is running
        self._lock = threading.Lock()
        self.costs: dict[str, Cost] = {}

    def phase(self) -> str | None:
        phase: str | None = getattr(self._local, "phase", None)
        if phase is not None:
            return phase
        name = threading.current_thread().name
        if name.startswith("ScanActor"):
            return SCAN
        if name.startswith(self._callers):
            return CALLER
        return None

    def cost(self, phase: str) -> Cost:
        with self._lock:
            return self.costs.setdefault(phase, Cost())

    def operation(self, phase: str) -> Cost:
        """The critical path of one operation: what its caller did, plus what the library actor did in
        the turn that handled it (`phase`: StartScan, PauseScan, ...; the post-validation runs in the
        next turn, and is not on the path)."""
        caller, library = self.cost(CALLER), self.cost(phase)
        return Cost(
            asks=caller.asks + library.asks,
            writes=caller.writes + library.writes,
            reads=caller.reads + library.reads,
            statements=caller.statements + library.statements,
        )

    def reset(self) -> None:
        with self._lock:
            self.costs.clear()

    def _record(self, kind: str, op: str, phase: str | None = None) -> None:
        phase = phase or self.phase()
        if phase is not None:
            with self._lock:
                getattr(self.costs.setdefault(phase, Cost()), kind).append(op)

    def _statement(self, _conn: Any, *_: Any) -> None:
        op = getattr(self._writer, "op", None)
        if op is not None:
            with self._lock:
                # a write's statements, whoever asked for it (the asker's phase has its transaction)
                for cost in self.costs.values():
                    if op in cost.writes:
                        cost.statements[op] += 1
                        break
            return
        op = getattr(self._local, "op", None)
        phase = self.phase()
        if op is not None and phase is not None:
            self.cost(phase).statements[op] += 1

    def _patches(self) -> dict[tuple[Any, str], Any]:
        budget = self
        ask, receive = pykka.ActorRef.ask, LibraryActor.on_receive
        read, aread, write = Database.read, Database.aread, Database.write

        def counted_ask(ref: Any, message: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(message, Write):
                budget._record("writes", message.op)
            budget._record("asks", type(message).__name__)
            return ask(ref, message, *args, **kwargs)

        def phased_receive(actor: Any, message: Any) -> Any:
            budget._local.phase = type(message).__name__
            try:
                return receive(actor, message)
            finally:
                budget._local.phase = None

        def counted_read(db: Database, query: Read[Any]) -> Any:
            # an event loop's read on SQLite runs here on a reader thread: counted once, by `aread`,
            # and its statements belong to the loop's caller
            on_reader = threading.current_thread().name.startswith(READER_THREADS)
            if not on_reader:
                budget._record("reads", query.op)
            budget._local.op = query.op
            if on_reader:
                budget._local.phase = CALLER
            try:
                return read(db, query)
            finally:
                budget._local.op = None
                budget._local.phase = None

        async def counted_aread(db: Database, query: Read[Any]) -> Any:
            budget._record("reads", query.op)
            budget._local.op = query.op
            try:
                return await aread(db, query)
            finally:
                budget._local.op = None

        def named_write(db: Database, op: str, *args: Any, **kwargs: Any) -> Any:
            budget._writer.op = op
            try:
                return write(db, op, *args, **kwargs)
            finally:
                budget._writer.op = None

        return {
            (pykka.ActorRef, "ask"): counted_ask,
            (LibraryActor, "on_receive"): phased_receive,
            (Database, "read"): counted_read,
            (Database, "aread"): counted_aread,
            (Database, "write"): named_write,
        }

    @contextmanager
    def active(self, *databases: Database) -> Iterator[Budget]:
        """Count while the block runs, on these databases' engines (the async one too, if open)."""
        engines: list[sa.Engine] = []
        for db in databases:
            engines.append(db.engine)
            if db.async_engine is not None:  # the API's engine, when the app opened it
                engines.append(db.async_engine.sync_engine)
        patches = self._patches()
        originals = {key: getattr(*key) for key in patches}
        for (owner, name), patched in patches.items():
            setattr(owner, name, patched)
        for engine in engines:
            event.listen(engine, "before_cursor_execute", self._statement)
        try:
            yield self
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", self._statement)
            for (owner, name), original in originals.items():
                setattr(owner, name, original)
