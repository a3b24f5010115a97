"""The WorkerPoolActor: owns the pool of worker processes that run the named processors."""

from __future__ import annotations

import structlog

from scanguard.actors.liveness import Answering
from scanguard.processing.pool import FilePool

log = structlog.get_logger("scanguard.workers")


class WorkerPoolActor(Answering):
    """Owns the FilePool's lifetime: started before the supervisor's scans, stopped (workers killed) after them."""

    def __init__(self, pool: FilePool, stop_timeout: float) -> None:
        super().__init__()
        self.pool = pool
        self.stop_timeout = stop_timeout

    def on_start(self) -> None:
        log.info("workers.started", workers=self.pool.workers, processors=list(self.pool.names))

    def on_stop(self) -> None:
        abandoned = self.pool.close(self.stop_timeout)  # bounded: a worker that will not die is left behind
        log.info("workers.stopped", workers=self.pool.workers, abandoned=list(abandoned))
