"""Scanner routes: the safeguarded start/pause/resume/delete, their seed-era aliases, jobs and safeguards."""

from __future__ import annotations

from aiohttp import web

from scanguard.control import JobOperation
from scanguard.errors import Conflict, ScanguardError
from scanguard.http.params import JobsQuery, StartQuery, path_id, query
from scanguard.http.schemas import JobEnvelope, JobList, JobPage, reply
from scanguard.http.state import runtime_of, slot_of
from scanguard.input_checks import job_statuses
from scanguard.records import Job, Page
from scanguard.store.reads import ActiveJobs, ListJobs

routes = web.RouteTableDef()
BASE = "/api/admin/scanner"


class NotReady(ScanguardError):
    """This part of the runtime is not available in this build yet."""

    status = 503
    code = "not_ready"


class NoActiveJob(Conflict):
    """The library has no job in pending, running or paused."""

    code = "no_active_job"

    def __init__(self, library_id: int) -> None:
        super().__init__(f"library {library_id} has no active scan", library_id=library_id)


def _job(job: Job, status: int = 200) -> web.Response:
    return reply(JobEnvelope(job), status)


# ---- the safeguarded operations ------------------------------------------------------------


@routes.post(BASE + "/safe/start/{library_id}", name="safe_start")
async def safe_start(request: web.Request) -> web.Response:
    library_id = path_id(request, "library_id")
    asked = query(request, StartQuery)
    job = await runtime_of(request).aio.start_scan(
        library_id, retry_failed=asked.retry_failed, paths=asked.path
    )
    return _job(job, 201)


@routes.post(BASE + "/safe/pause/{job_id}", name="safe_pause")
async def safe_pause(request: web.Request) -> web.Response:
    return _job(await runtime_of(request).aio.pause_scan(path_id(request, "job_id")))


@routes.post(BASE + "/safe/resume/{job_id}", name="safe_resume")
async def safe_resume(request: web.Request) -> web.Response:
    return _job(await runtime_of(request).aio.resume_scan(path_id(request, "job_id")))


@routes.delete(BASE + "/safe/jobs/{job_id}", name="safe_delete_job")
async def safe_delete_job(request: web.Request) -> web.Response:
    deleted = await runtime_of(request).aio.delete_job(path_id(request, "job_id"))
    return reply(deleted)


# ---- the seed's older paths: aliases of the safe operations, by library id ----------------


async def _on_active_job(request: web.Request, op: JobOperation) -> web.Response:
    """`op` on the library's active job, found and routed in one read: 404 for an unknown library, 409
    when it has none."""
    library_id = path_id(request, "library_id")
    job = await runtime_of(request).aio.on_active_job(op, library_id)
    if job is None:
        raise NoActiveJob(library_id)
    return _job(job)


@routes.post(BASE + "/start/{library_id}", name="start_alias")
async def start_alias(request: web.Request) -> web.StreamResponse:
    return await safe_start(request)


@routes.post(BASE + "/pause/{library_id}", name="pause_alias")
async def pause_alias(request: web.Request) -> web.Response:
    return await _on_active_job(request, "pause_scan")


@routes.post(BASE + "/resume/{library_id}", name="resume_alias")
async def resume_alias(request: web.Request) -> web.Response:
    return await _on_active_job(request, "resume_scan")


@routes.delete(BASE + "/jobs/{job_id}", name="delete_job_alias")
async def delete_job_alias(request: web.Request) -> web.StreamResponse:
    return await safe_delete_job(request)


# ---- reading jobs --------------------------------------------------------------------------


def _current_jobs(_read: ActiveJobs, jobs: tuple[Job, ...]) -> JobList:
    return JobList(tuple(jobs))


def _jobs_page(read: ListJobs, page: Page[Job]) -> JobPage:
    return JobPage(page.total, read.limit, read.offset, jobs=page.items)


# the hot reads: identical requests that arrive together share one read and one encoding of its answer


@routes.get(BASE + "/current-jobs", name="current_jobs")
async def current_jobs(request: web.Request) -> web.Response:
    return await slot_of(request).json(ActiveJobs(), _current_jobs)


@routes.get(BASE + "/jobs", name="list_jobs")
async def list_jobs(request: web.Request) -> web.Response:
    asked = query(request, JobsQuery)
    read = ListJobs(job_statuses(asked.status), asked.library_id, asked.limit, asked.offset)
    return await slot_of(request).json(read, _jobs_page)


@routes.get(BASE + "/jobs/{job_id}", name="get_job")
async def get_job(request: web.Request) -> web.Response:
    return _job(await runtime_of(request).aio.get_job(path_id(request, "job_id")))


# ---- safeguards ----------------------------------------------------------------------------


@routes.get(BASE + "/safeguards/status", name="safeguards_status")
async def safeguards_status(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    if not hasattr(rt, "safeguard_status"):
        raise NotReady("the safeguard status is not available in this runtime yet")
    return web.json_response(await slot_of(request).coalesced("safeguard_status")())


@routes.post(BASE + "/emergency/cleanup", name="emergency_cleanup")
async def emergency_cleanup(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    if not hasattr(rt, "emergency_cleanup"):
        raise NotReady("emergency cleanup is not available in this runtime yet")
    return web.json_response(await rt.aio.emergency_cleanup())
