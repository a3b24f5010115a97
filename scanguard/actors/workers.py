"""The WorkerPoolActor: owns the pool of worker processes that run the named processors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from scanguard.processing.pool import FilePool

log = structlog.get_logger("scanguard.workers")


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """Reply: the pool's processors and size."""


class WorkerPoolActor(pykka.ThreadingActor):
    """Owns the FilePool's lifetime: started before the supervisor's scans, stopped (workers killed) after them."""

    def __init__(self, pool: FilePool, stop_timeout: float) -> None:
        super().__init__()
        self.pool = pool
        self.stop_timeout = stop_timeout

    def on_start(self) -> None:
        log.info("workers.started", workers=self.pool.workers, processors=list(self.pool.names))

    def on_stop(self) -> None:
        self.pool.close(self.stop_timeout)
        log.info("workers.stopped", workers=self.pool.workers)

    def on_receive(self, message: Any) -> Any:
        match message:
            case PoolStatus():
                return {
                    "processors": list(self.pool.names),
                    "workers": self.pool.workers,
                    "file_timeout": self.pool.file_timeout,
                }
            case _:
                return super().on_receive(message)
