"""This process's LibraryActors: one per library, started on its first operation, stopped with the system."""

from __future__ import annotations

import threading
from typing import Any

import pykka

from scanguard.actors.library import LibraryActor
from scanguard.config import Config
from scanguard.errors import RuntimeStopped
from scanguard.store.seam import Store


class Libraries:
    """Owns this process's LibraryActors (each one's mailbox is its library's lock): started on the first
    operation that needs one, started anew when one died, handed over once to be stopped with the system."""

    def __init__(self, config: Config, instance: str, store: Store, supervisor: pykka.ActorRef[Any]) -> None:
        self._parts = (config, instance, store, supervisor)
        self._lock = threading.Lock()
        self._refs: dict[int, pykka.ActorRef[Any]] = {}
        self._closed = False

    def get(self, library_id: int) -> pykka.ActorRef[Any]:
        """The library's actor, started here unless it is alive; RuntimeStopped once closed."""
        with self._lock:
            if self._closed:
                raise RuntimeStopped()
            ref = self._refs.get(library_id)
            if ref is None or not ref.is_alive():
                ref = LibraryActor.start(library_id, *self._parts)
                self._refs[library_id] = ref
            return ref

    def forget(self, library_id: int) -> None:
        """The library was removed: its actor is told to stop (not waited for)."""
        with self._lock:
            ref = self._refs.pop(library_id, None)
        if ref is not None:
            ref.stop(block=False)

    def refs(self) -> dict[str, pykka.ActorRef[Any]]:
        """The actors by name (`library:ID`), for the health checker."""
        with self._lock:
            return {f"library:{library_id}": ref for library_id, ref in self._refs.items()}

    def close(self) -> list[pykka.ActorRef[Any]]:
        """Start no more; the actors started, for the system to stop (none on a second call)."""
        with self._lock:
            self._closed = True
            refs = list(self._refs.values())
            self._refs.clear()
        return refs
