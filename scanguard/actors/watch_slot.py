"""Whether this runtime watches (DESIGN §12): its WatchKeeper, started once asked, stopped with the system."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

import pykka

from scanguard.errors import RuntimeStopped

if TYPE_CHECKING:
    from scanguard.actors.watcher import WatchParts


class WatchSlot:
    """Owns this runtime's WatchKeeper once watching is asked for (Runtime.watch): started at most once,
    told when a library's switch or the set of libraries changed, handed over once to be stopped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keeper: pykka.ActorRef[Any] | None = None
        self._closed = False

    def start(self, parts: WatchParts) -> None:
        """Start watching; once watching, nothing more; RuntimeStopped once closed."""
        from scanguard.actors.watch_keeper import WatchKeeper  # noqa: PLC0415 - not for one-shot scans

        with self._lock:
            if self._closed:
                raise RuntimeStopped()
            if self._keeper is None:
                self._keeper = WatchKeeper.start(parts)

    def sync(self) -> None:
        """Tell the keeper, if there is one, that a library's watch switch (or the set of libraries) changed."""
        keeper = self._keeper
        if keeper is not None:
            from scanguard.actors.watch_keeper import Sync  # noqa: PLC0415

            with contextlib.suppress(pykka.ActorDeadError):
                keeper.tell(Sync())

    def refs(self) -> dict[str, pykka.ActorRef[Any]]:
        """The keeper by name, for the health checker (nothing while not watching)."""
        keeper = self._keeper
        return {} if keeper is None else {"watchers": keeper}

    def close(self) -> list[pykka.ActorRef[Any]]:
        """Watch no more; the keeper, if it started, for the system to stop (none on a second call)."""
        with self._lock:
            self._closed = True
            keeper, self._keeper = self._keeper, None
        return [] if keeper is None else [keeper]
