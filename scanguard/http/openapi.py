"""The OpenAPI 3.1 document of the admin API: one row per route, its objects and parameters derived from
their declarations (the records, the answers of scanguard.http.schemas, the queries and bodies of
scanguard.http.params)."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from scanguard.http.params import EventsQuery, FilesQuery, JobsQuery, Query, StartQuery, StreamQuery
from scanguard.http.schemas import JSON, REF, components
from scanguard.records import Id

DESCRIPTIONS = {
    400: "Malformed request: bad id, parameter or body, or a query parameter the operation does not declare",
    401: "Missing or invalid bearer token",
    403: "Disabled by configuration, or the path is outside allowed_roots",
    404: "Unknown id (or, adding a library, no directory at that path)",
    405: "Method not allowed",
    409: "Illegal transition, or the library is busy (details name the job in the way)",
    413: "Body too large",
    415: "The body must be application/json",
    503: "The store or runtime is not available",
}
ID = msgspec.json.schema(Id)
ADMIN_ERRORS = (400, 401, 413, 503)  # 400 also for a query parameter the operation does not declare


def ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(name=name)}


def _links(**targets: tuple[str, str, str]) -> dict[str, Any]:
    """OpenAPI links: name=(operationId, its path parameter, where the value is in this response body)."""
    return {
        name: {"operationId": op_id, "parameters": {param: f"$response.body#{pointer}"}}
        for name, (op_id, param, pointer) in targets.items()
    }


# what a client does next with an object it got back: stateful testing chains these (add a library, start
# its scan, pause, resume, delete, and see the deleted job answer 404)
JOB, LIB = "/job/id", "/library/id"
ON_JOB = _links(
    GetJob=("getJob", "job_id", JOB),
    PauseJob=("safePause", "job_id", JOB),
    ResumeJob=("safeResume", "job_id", JOB),
    DeleteJob=("safeDeleteJob", "job_id", JOB),
)
ON_LIBRARY = _links(
    GetLibrary=("getLibrary", "library_id", LIB),
    StartScan=("safeStart", "library_id", LIB),
    ListFiles=("listFiles", "library_id", LIB),
    RemoveLibrary=("removeLibrary", "library_id", LIB),
)
ON_DELETED_JOB = _links(GetDeletedJob=("getJob", "job_id", "/deleted_job_id"))
ON_REMOVED_LIBRARY = _links(GetRemovedLibrary=("getLibrary", "library_id", "/deleted_library_id"))

TEXT = {"type": "string"}
STREAM = (
    "Server-Sent Events: `id:`, `event:` (the kind) and `data:` (an Event as JSON) per event; "
    '`event: progress` frames carry `{"jobs": [...]}` snapshots; comments are heartbeats. '
    "Honours Last-Event-ID by replaying from the events table; an `event: error` frame (an Error) ends a "
    "stream the runtime can no longer serve."
)
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
}


@dataclass(frozen=True, slots=True)
class Route:
    """One documented operation: what it answers (a component, or another media type), its errors, query
    and body; path parameters are the ids named in its path."""

    method: str
    path: str
    op_id: str
    summary: str
    answer: str  # a component name, or a media type (it has a '/') answered as text
    said: str  # the answer's description
    errors: tuple[int, ...] = ()
    status: int = 200
    query: type[Query] | None = None
    body: str | None = None
    tag: str = "scanner"
    links: dict[str, Any] = field(default_factory=dict)
    public: bool = False


S, L = "/api/admin/scanner", "/api/admin/libraries"
ROUTES = (
    Route("post", f"{S}/safe/start/{{library_id}}", "safeStart", "Start a scan of a library (safeguarded)",
          "JobEnvelope", "The new job", (404, 409), 201, StartQuery, links=ON_JOB),
    Route("post", f"{S}/safe/pause/{{job_id}}", "safePause", "Pause a running job",
          "JobEnvelope", "The paused job", (404, 409), links=ON_JOB),
    Route("post", f"{S}/safe/resume/{{job_id}}", "safeResume", "Resume a paused job from its checkpoint",
          "JobEnvelope", "The resumed job", (404, 409), links=ON_JOB),
    Route("delete", f"{S}/safe/jobs/{{job_id}}", "safeDeleteJob", "Hard-delete a job and the media files it "
          "discovered", "DeletedJob", "What was removed", (404, 409), links=ON_DELETED_JOB),
    Route("post", f"{S}/start/{{library_id}}", "startAlias", "Alias of safe/start",
          "JobEnvelope", "The new job", (404, 409), 201, StartQuery, tag="aliases"),
    Route("post", f"{S}/pause/{{library_id}}", "pauseAlias", "Pause the library's active job",
          "JobEnvelope", "The paused job", (404, 409), tag="aliases"),
    Route("post", f"{S}/resume/{{library_id}}", "resumeAlias", "Resume the library's active job",
          "JobEnvelope", "The job", (404, 409), tag="aliases"),
    Route("get", f"{S}/jobs/{{job_id}}", "getJob", "One job", "JobEnvelope", "The job", (404,)),
    Route("delete", f"{S}/jobs/{{job_id}}", "deleteJobAlias", "Alias of safe/jobs delete",
          "DeletedJob", "What was removed", (404, 409), tag="aliases"),
    Route("get", f"{S}/jobs", "listJobs", "Jobs, newest first, filtered and paged", "JobPage", "One page",
          query=JobsQuery),
    Route("get", f"{S}/current-jobs", "currentJobs", "Every job in pending, running or paused",
          "JobList", "The active jobs"),
    Route("get", f"{S}/safeguards/status", "safeguardsStatus", "Health snapshot, safeguard counters and "
          "effective config", "SafeguardStatus", "The snapshot", tag="safeguards"),
    Route("post", f"{S}/emergency/cleanup", "emergencyCleanup", "Pause every active scan and clean up "
          "orphaned data", "CleanupReport", "The report", (403,), tag="safeguards"),
    Route("post", L, "addLibrary", "Register an existing directory as a library", "LibraryEnvelope",
          "The library", (403, 404, 409, 415), 201, body="NewLibrary", tag="libraries", links=ON_LIBRARY),
    Route("get", L, "listLibraries", "Every library", "LibraryList", "The libraries", tag="libraries"),
    Route("get", f"{L}/{{library_id}}", "getLibrary", "One library", "LibraryEnvelope", "The library",
          (404,), tag="libraries"),
    Route("patch", f"{L}/{{library_id}}", "updateLibrary", "Switch the library's watching on or off",
          "LibraryEnvelope", "The library", (404, 415), body="LibraryPatch", tag="libraries"),
    Route("delete", f"{L}/{{library_id}}", "removeLibrary", "Stop its scan; remove the library, its jobs and "
          "files in one transaction", "RemovedLibrary", "What was removed", (404, 409), tag="libraries",
          links=ON_REMOVED_LIBRARY),
    Route("get", f"{L}/{{library_id}}/files", "listFiles", "The library's media files, by path, paged",
          "FilePage", "One page", (404,), query=FilesQuery, tag="libraries"),
    Route("get", "/api/admin/events", "listEvents", "Recorded events, oldest first, filtered",
          "EventList", "Events", query=EventsQuery, tag="events"),
    Route("get", "/api/admin/events/stream", "streamEvents", "Live events (SSE)", "text/event-stream",
          STREAM, query=StreamQuery, tag="events"),
    Route("get", "/api/admin/instances", "listInstances", "Every instance serving this database: live or gone "
          "(heartbeat older than the lease), and the jobs each runs", "InstanceList", "The instances",
          tag="instances"),
    Route("get", "/api/admin/webhooks", "listWebhooks", "Each webhook's delivery: URL and kinds (never the "
          "secret), cursor, lag, last success and failure, dead deliveries", "WebhookList",
          "The configured webhooks", tag="webhooks"),
    Route("get", "/healthz", "healthz", "The process is up", "Health", "The process is up",
          tag="operations", public=True),
    Route("get", "/readyz", "readyz", "The store is reachable", "Readiness", "The store is reachable",
          (503,), tag="operations", public=True),
    Route("get", "/metrics", "metrics", "Prometheus metrics", "text/plain", "Prometheus text format",
          tag="operations", public=True),
    Route("get", "/api/openapi.json", "openapi", "This document", "Document", "This document",
          tag="operations", public=True),
    Route("get", "/", "dashboard", "The dashboard page", "text/html", "The dashboard page",
          tag="operations", public=True),
    Route("get", "/dashboard.js", "dashboard_script", "The dashboard's script", "text/javascript",
          "The dashboard's script", tag="operations", public=True),
    Route("get", "/dashboard.css", "dashboard_style", "The dashboard's style sheet", "text/css",
          "The dashboard's style sheet", tag="operations", public=True),
)  # fmt: skip


def _parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter from its field's schema: absent (never null) when not given, described outside it."""
    given = next(s for s in schema.get("anyOf", [schema]) if s != {"type": "null"})
    inner = {k: v for k, v in {**schema, **given}.items() if k != "anyOf" and (k, v) != ("default", None)}
    description = inner.pop("description", "")
    param = {"name": name, "in": "query", "required": False, "schema": inner, "description": description}
    if inner.get("type") == "array":
        param |= {"style": "form", "explode": True}
    return param


def _query(model: type[Query]) -> list[dict[str, Any]]:
    _, schemas = msgspec.json.schema_components([model], ref_template=REF)
    return [_parameter(name, schema) for name, schema in schemas[model.__name__]["properties"].items()]


def _answer(route: Route) -> dict[str, Any]:
    if "/" in route.answer:
        return {"description": route.said, "content": {route.answer: {"schema": TEXT}}}
    ok = {"description": route.said, "content": {JSON: {"schema": ref(route.answer)}}}
    return {**ok, "links": route.links} if route.links else ok


def _operation(route: Route) -> dict[str, Any]:
    statuses = set(route.errors) | (set() if route.public else set(ADMIN_ERRORS))
    error = ref("Error")
    op: dict[str, Any] = {
        "operationId": route.op_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": {
            str(route.status): _answer(route),
            **{
                str(s): {"description": DESCRIPTIONS[s], "content": {JSON: {"schema": error}}}
                for s in sorted(statuses)
            },
        },
    }
    ids = (
        {"name": n, "in": "path", "required": True, "schema": ID} for n in re.findall(r"{(\w+)}", route.path)
    )
    params = [*ids, *(_query(route.query) if route.query else ())]
    if route.op_id == "streamEvents":
        params.append(LAST_EVENT_ID)
        op["security"] = [{"bearer": []}, {"queryToken": []}]
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(route.body)}}}
    if route.public:
        op["security"] = []
    return op


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route)
    return paths


_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "scanguard admin API",
        "version": "1",
        "description": "Supervised, crash-safe media library scans. Every /api/admin route needs the bearer "
        'token; errors have one shape: {"error": {"code", "message", "details"}}.',
    },
    "security": [{"bearer": []}],
    "paths": _paths(),
    "components": {
        "schemas": {**components(), "Document": {"type": "object", "additionalProperties": True}},
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "queryToken": {"type": "apiKey", "in": "query", "name": "token"},
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may not mutate the shared one)."""
    return copy.deepcopy(_DOCUMENT)
