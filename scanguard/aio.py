"""The awaitable twin of Runtime: reads run on the admin app's event loop through the async engine on
PostgreSQL (asyncpg), else on reader threads; operations that wait on actors run on bridge threads, so the
loop never blocks.

pykka's own `await future` calls the blocking `get()` inside the event loop; these methods never do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from scanguard.control import Request, job_request, start_request
from scanguard.errors import RuntimeStopped
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
from scanguard.store import catalog, instances
from scanguard.store.database import Database
from scanguard.validation import check_id, job_statuses

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from scanguard.runtime import Runtime

P = ParamSpec("P")
R = TypeVar("R")


class AsyncRuntime:
    """Owns the way from asyncio code to a Runtime; one awaitable method per Runtime call."""

    # operations that wait for a library's mailbox and the writer (each bounded by operation_timeout)
    _control = ThreadPoolExecutor(max_workers=32, thread_name_prefix="scanguard-aio")
    # the safeguards' answers (status, health, cleanup, subscriptions): quick asks of idle actors, on
    # threads of their own so that they never queue behind control operations waiting for the writer
    _service = ThreadPoolExecutor(max_workers=4, thread_name_prefix="scanguard-aio-service")

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def _db(self) -> Database:
        if not self._rt.running:
            raise RuntimeStopped()
        return self._rt.database

    async def _run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._control, partial(fn, *args, **kwargs))

    async def _ask(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._service, partial(fn, *args, **kwargs))

    async def add_library(
        self, path: str, name: str | None = None, kind: str = "mixed", *, watch: bool | None = None
    ) -> Library:
        return await self._run(self._rt.add_library, path, name, kind, watch=watch)

    async def set_watch(self, library_id: int, enabled: bool) -> Library:
        return await self._run(self._rt.set_watch, library_id, enabled)

    async def get_library(self, library_id: int) -> Library:
        return await self._db().aread("get_library", catalog.get_library, check_id("library_id", library_id))

    async def active_job_id(self, library_id: int) -> int | None:
        """The library's job in pending, running or paused, if it has one (NotFound for no library)."""
        _library, busy = await self._db().aread(
            "library_for_start", catalog.library_for_start, check_id("library_id", library_id)
        )
        return busy

    async def list_libraries(self) -> tuple[Library, ...]:
        return await self._db().aread("list_libraries", catalog.list_libraries)

    async def remove_library(self, library_id: int) -> RemovedLibrary:
        return await self._run(self._rt.remove_library, library_id)

    async def list_files(
        self, library_id: int, *, limit: int = 100, offset: int = 0, errors: bool = False
    ) -> Page[MediaFile]:
        return await self._db().aread(
            "list_files",
            catalog.list_files,
            check_id("library_id", library_id),
            limit=limit,
            offset=offset,
            errors=errors,
        )

    async def _operate(self, request: Request) -> Any:
        """The operation after its pre-flight read (made on this loop): a refusal is answered here, at
        once; anything else waits for the library's mailbox on a bridge thread."""
        if request.refused is not None:
            return self._rt._operate(request)
        return await self._run(self._rt._operate, request)

    async def _job_request(self, op: str, job_id: int, *extra: str) -> Request:
        read_at = time.monotonic()
        job, library = await self._db().aread(
            "job_with_library", catalog.job_with_library, check_id("job_id", job_id)
        )
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
        library, busy = await self._db().aread(
            "library_for_start", catalog.library_for_start, check_id("library_id", library_id)
        )
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

    async def get_job(self, job_id: int) -> Job:
        return await self._db().aread("get_job", catalog.get_job, check_id("job_id", job_id))

    async def list_jobs(
        self, *, status: str | None = None, library_id: int | None = None, limit: int = 100, offset: int = 0
    ) -> Page[Job]:
        return await self._db().aread(
            "list_jobs",
            catalog.list_jobs,
            statuses=job_statuses(status),
            library_id=None if library_id is None else check_id("library_id", library_id),
            limit=limit,
            offset=offset,
        )

    async def current_jobs(self) -> tuple[Job, ...]:
        return await self._db().aread("current_jobs", catalog.active_jobs)

    async def instances(self) -> tuple[Instance, ...]:
        return await self._db().aread("instances", instances.list_instances)

    async def wait_for_job(
        self,
        job_id: int,
        statuses: tuple[str, ...] = ("completed", "failed", "paused"),
        timeout: float = 60.0,
    ) -> Job:
        return await self._run(self._rt.wait_for_job, job_id, statuses, timeout)

    async def events(
        self,
        *,
        job_id: int | None = None,
        library_id: int | None = None,
        kind: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest_first: bool = False,
    ) -> tuple[Event, ...]:
        query = EventQuery(job_id, library_id, kind, after_id, limit, newest_first)
        return await self._db().aread("events", catalog.list_events, query)

    async def subscribe(self, callback: Callable[[Event], None]) -> int:
        return await self._ask(self._rt.subscribe, callback)

    async def unsubscribe(self, subscription: int) -> None:
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
