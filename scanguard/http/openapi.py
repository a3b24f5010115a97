"""The OpenAPI 3 document of the admin API, written by hand to match the routes one for one."""

from __future__ import annotations

import copy
from typing import Any

from scanguard.http.params import EVENT_KIND
from scanguard.http.schemas import ID, SCHEMAS, STR, obj, ref
from scanguard.records import EVENT_FAMILIES, STATUSES
from scanguard.scope import MAX_HTTP_SCOPE_PATH, MAX_SCOPE_PATHS, SCOPE_PATH_PATTERN
from scanguard.validation import MAX_ID

JSON = "application/json"


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


def _error(status: int) -> dict[str, Any]:
    return {"description": DESCRIPTIONS[status], "content": {JSON: {"schema": ref("Error")}}}


def _ok(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": ref(schema)}}}


def _links(**targets: tuple[str, str, str]) -> dict[str, Any]:
    """OpenAPI links: name=(operationId, its path parameter, where the value is in this response body)."""
    return {
        name: {"operationId": op_id, "parameters": {param: f"$response.body#{pointer}"}}
        for name, (op_id, param, pointer) in targets.items()
    }


def _linked(ok: dict[str, Any], links: dict[str, Any]) -> dict[str, Any]:
    return {**ok, "links": links}


# what a client does next with an object it got back: stateful testing chains these (add a library, start
# its scan, pause, resume, delete, and see the deleted job answer 404)
JOB = "/job/id"
ON_JOB = _links(
    GetJob=("getJob", "job_id", JOB),
    PauseJob=("safePause", "job_id", JOB),
    ResumeJob=("safeResume", "job_id", JOB),
    DeleteJob=("safeDeleteJob", "job_id", JOB),
)
LIB = "/library/id"
ON_LIBRARY = _links(
    GetLibrary=("getLibrary", "library_id", LIB),
    StartScan=("safeStart", "library_id", LIB),
    ListFiles=("listFiles", "library_id", LIB),
    RemoveLibrary=("removeLibrary", "library_id", LIB),
)


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "page size")
OFFSET = _query(
    "offset", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "default": 0}, "rows to skip"
)
FLAG = {"type": "string", "enum": ["true", "false"], "default": "false"}
RETRY_FAILED = _query(
    "retry_failed", FLAG, "also process again unchanged files whose per-file work failed before"
)
SCOPE_PATH = {
    **_query(
        "path",
        {
            "type": "array",
            "items": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_HTTP_SCOPE_PATH,
                "pattern": SCOPE_PATH_PATTERN,
            },
            "maxItems": MAX_SCOPE_PATHS,
        },
        "scan only these folders or files (repeatable, relative to the library root; an absolute path "
        "inside the root is accepted too); none: the whole library. A path with a '..' segment or outside "
        "the root answers 400 invalid_scope and starts nothing",
    ),
    "style": "form",
    "explode": True,
}
ERRORS_ONLY = _query("errors", FLAG, "only files whose per-file work failed (their error says why)")
EVENT_FILTERS = [
    _query("job_id", ID, "only this job's events"),
    _query("library_id", ID, "only this library's events"),
    _query(
        "kind",
        {"type": "string", "minLength": 1, "maxLength": 64, "pattern": f"^{EVENT_KIND}$"},
        "a kind, or a family ending with '.'",
    ),
    _query(
        "family",
        {"type": "string", "enum": list(EVENT_FAMILIES)},
        "only kinds of this family (with `kind`: both); "
        + "; ".join(f"{name}: {', '.join(prefixes)}" for name, prefixes in EVENT_FAMILIES.items()),
    ),
]


def _op(
    op_id: str,
    summary: str,
    ok: tuple[int, dict[str, Any]],
    errors: tuple[int, ...],
    *,
    params: list[dict[str, Any]] | None = None,
    tags: tuple[str, ...] = ("scanner",),
    public: bool = False,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    statuses = set(errors) | ({400, 503} if params or body else {503})
    if not public:
        statuses |= {400, 401, 413}  # 400 also for a query parameter the operation does not declare
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": list(tags),
        "responses": {str(ok[0]): ok[1], **{str(s): _error(s) for s in sorted(statuses)}},
    }
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    if public:
        op["security"] = []
    return op


def _scanner_paths() -> dict[str, Any]:
    base = "/api/admin/scanner"
    job = ("job_id",)
    lib = ("library_id",)
    paths: dict[str, Any] = {
        f"{base}/safe/start/{{library_id}}": {
            "post": _op(
                "safeStart",
                "Start a scan of a library (safeguarded)",
                (201, _linked(_ok("JobEnvelope", "The new job"), ON_JOB)),
                (404, 409),
                params=[_path_id(*lib), RETRY_FAILED, SCOPE_PATH],
            )
        },
        f"{base}/safe/pause/{{job_id}}": {
            "post": _op(
                "safePause",
                "Pause a running job",
                (200, _linked(_ok("JobEnvelope", "The paused job"), ON_JOB)),
                (404, 409),
                params=[_path_id(*job)],
            )
        },
        f"{base}/safe/resume/{{job_id}}": {
            "post": _op(
                "safeResume",
                "Resume a paused job from its checkpoint",
                (200, _linked(_ok("JobEnvelope", "The resumed job"), ON_JOB)),
                (404, 409),
                params=[_path_id(*job)],
            )
        },
        f"{base}/safe/jobs/{{job_id}}": {
            "delete": _op(
                "safeDeleteJob",
                "Hard-delete a job and the media files it discovered",
                (
                    200,
                    _linked(
                        _ok("DeletedJob", "What was removed"),
                        _links(GetDeletedJob=("getJob", "job_id", "/deleted_job_id")),
                    ),
                ),
                (404, 409),
                params=[_path_id(*job)],
            )
        },
        f"{base}/start/{{library_id}}": {
            "post": _op(
                "startAlias",
                "Alias of safe/start",
                (201, _ok("JobEnvelope", "The new job")),
                (404, 409),
                params=[_path_id(*lib), RETRY_FAILED, SCOPE_PATH],
                tags=("aliases",),
            )
        },
        f"{base}/pause/{{library_id}}": {
            "post": _op(
                "pauseAlias",
                "Pause the library's active job",
                (200, _ok("JobEnvelope", "The paused job")),
                (404, 409),
                params=[_path_id(*lib)],
                tags=("aliases",),
            )
        },
        f"{base}/resume/{{library_id}}": {
            "post": _op(
                "resumeAlias",
                "Resume the library's active job",
                (200, _ok("JobEnvelope", "The job")),
                (404, 409),
                params=[_path_id(*lib)],
                tags=("aliases",),
            )
        },
        f"{base}/jobs/{{job_id}}": {
            "get": _op(
                "getJob", "One job", (200, _ok("JobEnvelope", "The job")), (404,), params=[_path_id(*job)]
            ),
            "delete": _op(
                "deleteJobAlias",
                "Alias of safe/jobs delete",
                (200, _ok("DeletedJob", "What was removed")),
                (404, 409),
                params=[_path_id(*job)],
                tags=("aliases",),
            ),
        },
        f"{base}/jobs": {
            "get": _op(
                "listJobs",
                "Jobs, newest first, filtered and paged",
                (200, _ok("JobPage", "One page")),
                (),
                params=[
                    _query("status", {"type": "string", "enum": list(STATUSES)}, "only this status"),
                    _query("library_id", ID, "only this library's jobs"),
                    LIMIT,
                    OFFSET,
                ],
            )
        },
        f"{base}/current-jobs": {
            "get": _op(
                "currentJobs",
                "Every job in pending, running or paused",
                (200, _ok("JobList", "The active jobs")),
                (),
            )
        },
        f"{base}/safeguards/status": {
            "get": _op(
                "safeguardsStatus",
                "Health snapshot, safeguard counters and effective config",
                (200, _ok("SafeguardStatus", "The snapshot")),
                (),
                tags=("safeguards",),
            )
        },
        f"{base}/emergency/cleanup": {
            "post": _op(
                "emergencyCleanup",
                "Pause every active scan and clean up orphaned data",
                (200, _ok("CleanupReport", "The report")),
                (403,),
                tags=("safeguards",),
            )
        },
    }
    return paths


def _library_paths() -> dict[str, Any]:
    base = "/api/admin/libraries"
    new = {"required": True, "content": {JSON: {"schema": ref("NewLibrary")}}}
    return {
        base: {
            "post": _op(
                "addLibrary",
                "Register an existing directory as a library",
                (201, _linked(_ok("LibraryEnvelope", "The library"), ON_LIBRARY)),
                (403, 404, 409, 415),
                body=new,
                tags=("libraries",),
            ),
            "get": _op(
                "listLibraries",
                "Every library",
                (200, _ok("LibraryList", "The libraries")),
                (),
                tags=("libraries",),
            ),
        },
        f"{base}/{{library_id}}": {
            "get": _op(
                "getLibrary",
                "One library",
                (200, _ok("LibraryEnvelope", "The library")),
                (404,),
                params=[_path_id("library_id")],
                tags=("libraries",),
            ),
            "patch": _op(
                "updateLibrary",
                "Switch the library's watching on or off",
                (200, _ok("LibraryEnvelope", "The library")),
                (404, 415),
                params=[_path_id("library_id")],
                body={"required": True, "content": {JSON: {"schema": ref("LibraryPatch")}}},
                tags=("libraries",),
            ),
            "delete": _op(
                "removeLibrary",
                "Stop its scan; remove the library, its jobs and files in one transaction",
                (
                    200,
                    _linked(
                        _ok("RemovedLibrary", "What was removed"),
                        _links(GetRemovedLibrary=("getLibrary", "library_id", "/deleted_library_id")),
                    ),
                ),
                (404, 409),
                params=[_path_id("library_id")],
                tags=("libraries",),
            ),
        },
        f"{base}/{{library_id}}/files": {
            "get": _op(
                "listFiles",
                "The library's media files, by path, paged",
                (200, _ok("FilePage", "One page")),
                (404,),
                params=[_path_id("library_id"), LIMIT, OFFSET, ERRORS_ONLY],
                tags=("libraries",),
            ),
        },
    }


def _event_paths() -> dict[str, Any]:
    after = _query(
        "after_id", {"type": "integer", "minimum": 0, "maximum": MAX_ID}, "only events after this id"
    )
    limit = _query(
        "limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "at most this many"
    )
    stream_ok = {
        "description": "Server-Sent Events: `id:`, `event:` (the kind) and `data:` (an Event as JSON) per event; "
        '`event: progress` frames carry `{"jobs": [...]}` snapshots; comments are heartbeats. '
        "Honours Last-Event-ID by replaying from the events table; an `event: error` frame (an Error) ends a "
        "stream the runtime can no longer serve.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    stream = _op(
        "streamEvents",
        "Live events (SSE)",
        (200, stream_ok),
        (),
        params=[
            *EVENT_FILTERS,
            after,
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
            },
            _query("token", STR, "the bearer token, for EventSource (this route only)"),
        ],
        tags=("events",),
    )
    stream["security"] = [{"bearer": []}, {"queryToken": []}]
    return {
        "/api/admin/events": {
            "get": _op(
                "listEvents",
                "Recorded events, oldest first, filtered",
                (200, _ok("EventList", "Events")),
                (),
                params=[
                    *EVENT_FILTERS,
                    after,
                    limit,
                    _query("newest_first", {"type": "string", "enum": ["true", "false"]}, "newest first"),
                ],
                tags=("events",),
            )
        },
        "/api/admin/events/stream": {"get": stream},
    }


def _listing(path: str, op_id: str, summary: str, schema: str, description: str, tag: str) -> dict[str, Any]:
    """A GET route that takes no parameters and answers one listing."""
    return {path: {"get": _op(op_id, summary, (200, _ok(schema, description)), (), tags=(tag,))}}


def _instance_paths() -> dict[str, Any]:
    return _listing(
        "/api/admin/instances",
        "listInstances",
        "Every instance serving this database: live or gone (heartbeat older than the lease), "
        "and the jobs each runs",
        "InstanceList",
        "The instances",
        "instances",
    )


def _webhook_paths() -> dict[str, Any]:
    return _listing(
        "/api/admin/webhooks",
        "listWebhooks",
        "Each webhook's delivery: URL and kinds (never the secret), cursor, lag, last success and "
        "failure, dead deliveries",
        "WebhookList",
        "The configured webhooks",
        "webhooks",
    )


def _public_paths() -> dict[str, Any]:
    def plain(
        op_id: str, summary: str, schema: dict[str, Any], errors: tuple[int, ...] = ()
    ) -> dict[str, Any]:
        ok = (200, {"description": summary, "content": {JSON: {"schema": schema}}})
        op = _op(op_id, summary, ok, errors, public=True, tags=("operations",))
        if not errors:
            op["responses"].pop("503")
        return op

    def page(op_id: str, description: str, media_type: str) -> dict[str, Any]:
        """A public page or asset of the dashboard, served under its Content-Security-Policy."""
        return {
            "get": {
                **plain(op_id, description, STR),
                "responses": {"200": {"description": description, "content": {media_type: {"schema": STR}}}},
            }
        }

    return {
        "/healthz": {"get": plain("healthz", "The process is up", obj({"status": STR}))},
        "/readyz": {
            "get": plain(
                "readyz",
                "The store is reachable",
                obj({"status": STR}, {"store_latency_ms": {"type": "number"}}),
                (503,),
            )
        },
        "/metrics": {
            "get": {
                **plain("metrics", "Prometheus metrics", STR),
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": STR}},
                    }
                },
            }
        },
        "/api/openapi.json": {
            "get": plain("openapi", "This document", {"type": "object", "additionalProperties": True})
        },
        "/": page("dashboard", "The dashboard page", "text/html"),
        "/dashboard.js": page("dashboard_script", "The dashboard's script", "text/javascript"),
        "/dashboard.css": page("dashboard_style", "The dashboard's style sheet", "text/css"),
    }


_DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "scanguard admin API",
        "version": "1",
        "description": "Supervised, crash-safe media library scans. Every /api/admin route needs the bearer "
        'token; errors have one shape: {"error": {"code", "message", "details"}}.',
    },
    "security": [{"bearer": []}],
    "paths": {
        **_scanner_paths(),
        **_library_paths(),
        **_event_paths(),
        **_instance_paths(),
        **_webhook_paths(),
        **_public_paths(),
    },
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "queryToken": {"type": "apiKey", "in": "query", "name": "token"},
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may not mutate the shared one)."""
    return copy.deepcopy(_DOCUMENT)
