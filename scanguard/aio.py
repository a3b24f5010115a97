"""The awaitable twin of Runtime: reads run on the admin app's event loop through the async engine on
PostgreSQL (asyncpg), else on reader threads; operations that wait on actors run on bridge threads, so the
loop never blocks.

pykka's own `await future` calls the blocking `get()` inside the event loop; these methods never do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from scanguard.control import JobOperation, Request, job_request, start_request
from scanguard.errors import OperationTimeout, RuntimeStopped
from scanguard.input_checks import event_family, job_statuses
from scanguard.records import (
    DeletedJob,
    Event,
    EventQuery,
    Instance,
    Job,
    Library,
    MediaFile,
    Page,
    RemovedLibrary,
)
from scanguard.routing import operate
from scanguard.store.database import Database
from scanguard.store.reads import (
    ActiveJobOf,
    ActiveJobs,
    GetJob,
    GetLibrary,
    JobWithLibrary,
    LibraryForStart,
    ListEvents,
    ListFiles,
    ListInstances,
    ListJobs,
    ListLibraries,
    Read,
)

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from scanguard.runtime import Runtime

P = ParamSpec("P")
R = TypeVar("R")


class AsyncRuntime:
    """Owns the way from asyncio code to one Runtime — one awaitable method per Runtime call — and the
    bridge threads that way needs, which the Runtime shuts down (`close`) when it stops."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        # operations that wait for a library's mailbox and the writer (each bounded by operation_timeout)
        self._control = ThreadPoolExecutor(max_workers=32, thread_name_prefix="scanguard-aio")
        # the safeguards' answers (status, health, cleanup, subscriptions): quick asks of idle actors, on
        # threads of their own so that they never queue behind control operations waiting for the writer
        self._service = ThreadPoolExecutor(max_workers=4, thread_name_prefix="scanguard-aio-service")

    def close(self) -> None:
        """Shut the bridge threads down: what is queued is cancelled, what runs (bounded by
        operation_timeout, its actors already stopped) is waited for."""
        for executor in (self._control, self._service):
            executor.shutdown(wait=True, cancel_futures=True)

    def _db(self) -> Database:
        if not self._rt.running:
            raise RuntimeStopped()
        return self._rt.database

    async def _run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._bridge(self._control, partial(fn, *args, **kwargs))

    async def _ask(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._bridge(self._service, partial(fn, *args, **kwargs))

    async def _bridge(self, executor: ThreadPoolExecutor, call: Callable[[], R]) -> R:
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(executor, call)
        except RuntimeError as exc:  # shut down with the runtime
            raise RuntimeStopped() from exc
        return await future

    async def read(self, query: Read[R]) -> R:
        """Any declared read (scanguard.store.reads) on this event loop, never blocking it."""
        return await self._db().aread(query)

    async def add_library(
        self, path: str, name: str | None = None, kind: str = "mixed", *, watch: bool | None = None
    ) -> Library:
        return await self._run(self._rt.add_library, path, name, kind, watch=watch)

    async def set_watch(self, library_id: int, enabled: bool) -> Library:
        return await self._run(self._rt.set_watch, library_id, enabled)

    async def get_library(self, library_id: int) -> Library:
        return await self._db().aread(GetLibrary(library_id))

    async def list_libraries(self) -> tuple[Library, ...]:
        return await self._db().aread(ListLibraries())

    async def remove_library(self, library_id: int) -> RemovedLibrary:
        return await self._run(self._rt.remove_library, library_id)

    async def list_files(
        self, library_id: int, *, limit: int = 100, offset: int = 0, errors: bool = False
    ) -> Page[MediaFile]:
        return await self._db().aread(ListFiles(library_id, limit, offset, errors))

    async def _operate(self, request: Request) -> Any:
        """The operation after its pre-flight read (made on this loop): a refusal is answered here, at
        once; anything else waits for the library's mailbox on a bridge thread."""
        system = self._rt.system
        if request.refused is not None:
            return operate(system, request)
        return await self._run(operate, system, request)

    async def _job_request(self, op: JobOperation, job_id: int, *extra: str) -> Request:
        read_at = time.monotonic()
        job, library = await self._db().aread(JobWithLibrary(job_id))
        return job_request(op, read_at, job, library, *extra)

    async def start_scan(
        self,
        library_id: int,
        *,
        retry_failed: bool = False,
        paths: Sequence[str | os.PathLike[str]] | None = None,
        trigger: str = "user",
    ) -> Job:
        read_at = time.monotonic()
        library, busy = await self._db().aread(LibraryForStart(library_id))
        request = start_request(read_at, library, busy, retry_failed, paths, trigger)
        job: Job = await self._operate(request)
        return job

    async def pause_scan(self, job_id: int, reason: str = "user") -> Job:
        job: Job = await self._operate(await self._job_request("pause_scan", job_id, reason))
        return job

    async def resume_scan(self, job_id: int) -> Job:
        job: Job = await self._operate(await self._job_request("resume_scan", job_id))
        return job

    async def delete_job(self, job_id: int) -> DeletedJob:
        deleted: DeletedJob = await self._operate(await self._job_request("delete_job", job_id))
        return deleted

    async def on_active_job(self, op: JobOperation, library_id: int) -> Any:
        """Pause, resume or delete the library's active job (the seed's alias routes), found with its
        library in one read; None, with nothing done, when the library has no active job."""
        read_at = time.monotonic()
        found = await self._db().aread(ActiveJobOf(library_id))
        if found is None:
            return None
        return await self._operate(job_request(op, read_at, *found))

    async def get_job(self, job_id: int) -> Job:
        return await self._db().aread(GetJob(job_id))

    async def list_jobs(
        self, *, status: str | None = None, library_id: int | None = None, limit: int = 100, offset: int = 0
    ) -> Page[Job]:
        return await self._db().aread(ListJobs(job_statuses(status), library_id, limit, offset))

    async def current_jobs(self) -> tuple[Job, ...]:
        return await self._db().aread(ActiveJobs())

    async def instances(self) -> tuple[Instance, ...]:
        return await self._db().aread(ListInstances())

    async def wait_for_job(
        self,
        job_id: int,
        statuses: tuple[str, ...] = ("completed", "failed", "paused"),
        timeout: float = 60.0,
    ) -> Job:
        """Wait on this loop until the job reaches one of `statuses`, woken by its events and re-read from
        the database: no bridge thread is held meanwhile, however many wait."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def wake(event: Event) -> None:  # on the event bus's thread
            if event.job_id == job_id:
                with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                    loop.call_soon_threadsafe(changed.set)

        subscription = await self.subscribe(wake)
        try:
            deadline = loop.time() + timeout
            while True:
                job = await self.get_job(job_id)
                if job.status in statuses:
                    return job
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise OperationTimeout(
                        f"waiting for job {job_id} to become {'/'.join(statuses)}", timeout
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(remaining, 0.5))
                changed.clear()
        finally:
            await self.unsubscribe(subscription)

    async def events(
        self,
        *,
        job_id: int | None = None,
        library_id: int | None = None,
        kind: str | None = None,
        family: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest_first: bool = False,
    ) -> tuple[Event, ...]:
        """Recorded events, oldest first: of one job or library, of a `kind` (a prefix when it ends with
        '.') and of a `family` (job, watch, file, library, system); both given, events matching both."""
        query = EventQuery(job_id, library_id, event_family(kind, family), after_id, limit, newest_first)
        return await self._db().aread(ListEvents(query))

    async def subscribe(self, callback: Callable[[Event], None]) -> int:
        return await self._ask(self._rt.subscribe, callback)

    async def unsubscribe(self, subscription: int) -> None:
        with contextlib.suppress(RuntimeStopped):  # the subscription ended with the runtime
            await self._ask(self._rt.unsubscribe, subscription)

    async def emergency_cleanup(self, requested_by: str = "api") -> dict[str, Any]:
        return await self._ask(self._rt.emergency_cleanup, requested_by)

    async def safeguard_status(self) -> dict[str, Any]:
        return await self._ask(self._rt.safeguard_status)

    async def check_health(self) -> dict[str, Any]:
        return await self._ask(self._rt.check_health)

    async def run_cleanup(self) -> dict[str, int]:
        return await self._ask(self._rt.run_cleanup)

    async def ping(self) -> float:
        return await self._ask(self._rt.ping)

    async def webhooks(self) -> list[dict[str, Any]]:
        return await self._ask(self._rt.webhooks)

    async def live_scans(self) -> dict[int, int]:
        return await self._ask(self._rt.live_scans)
