"""The OpenAPI components of the admin API: the Job, Library, MediaFile, Event and Error objects."""

from __future__ import annotations

from typing import Any

from scanguard.records import LIBRARY_KINDS, STATUSES, TRIGGERS, WATCH_STATES
from scanguard.validation import MAX_ID, MAX_NAME, MAX_PATH, NOT_BLANK, SOME_TEXT


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def obj(
    required: dict[str, Any], optional: dict[str, Any] | None = None, *, extra: bool = False
) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": extra,
    }


INT = {"type": "integer", "minimum": 0}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
STR = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": obj(
        {
            "error": obj(
                {"code": STR, "message": STR, "details": {"type": "object", "additionalProperties": True}}
            )
        }
    ),
    "Job": obj(
        {
            "id": ID,
            "library_id": ID,
            "status": {"type": "string", "enum": list(STATUSES)},
            "progress": {"type": "number", "minimum": 0, "maximum": 100},
            "files_found": INT,
            "files_processed": INT,
            "files_skipped": INT,
            "files_removed": INT,
            "bytes_processed": INT,
            "errors": INT,
            "files_per_second": {"type": "number", "minimum": 0},
            "eta_seconds": nullable({"type": "number", "minimum": 0}),
            "pause_reason": nullable(STR),
            "last_error": nullable(STR),
            "restarts": INT,
            "owner": nullable(STR),
            "created_at": TIME,
            "started_at": nullable(TIME),
            "updated_at": TIME,
            "finished_at": nullable(TIME),
            "scope": {"type": "array", "items": STR},
            "trigger": {"type": "string", "enum": list(TRIGGERS)},
            "files_moved": INT,
        },
        {
            "checkpoint": nullable(STR),
            "skip_reasons": {"type": "object", "additionalProperties": {"type": "integer"}},
            "retry_failed": {"type": "boolean"},
            "total_estimate": nullable(INT),
        },
    ),
    "Library": obj(
        {
            "id": ID,
            "path": STR,
            "name": STR,
            "kind": {"type": "string", "enum": list(LIBRARY_KINDS)},
            "media_files": INT,
            "created_at": TIME,
            "watch": ref("LibraryWatch"),
        }
    ),
    "LibraryWatch": obj(
        {
            "enabled": {
                "type": "boolean",
                "description": "Whether the library follows its folders by itself.",
            },
            "state": {
                "type": "string",
                "enum": list(WATCH_STATES),
                "description": "watching (inotify), polling (scanned every poll_interval: network "
                "filesystem or no watches left), unavailable (the root is gone or unmounted), off (switched "
                "off, or no running instance watches it), starting.",
            },
            "reason": nullable(
                {
                    "type": "string",
                    "description": "Why it is not simply watching: watch_limit, network_filesystem, overflow, "
                    "root_unavailable, crashed, not_watched.",
                }
            ),
            "message": nullable(STR),
            "since": nullable(TIME),
            "pending": {**INT, "description": "Changed paths waiting for the next scoped job."},
        }
    ),
    "LibraryPatch": obj({"watch": {"type": "boolean"}}),
    "MediaFile": obj(
        {
            "id": ID,
            "library_id": ID,
            "scan_job_id": nullable(ID),
            "path": STR,
            "size": INT,
            "mtime": {"type": "number"},
            "media_type": {"type": "string", "enum": ["audio", "video", "image"]},
            "quick_hash": nullable(STR),
            "first_seen_at": TIME,
            "last_seen_at": TIME,
            "missing_since": nullable(TIME),
            "error": nullable(STR),
            "meta": nullable({"type": "object", "additionalProperties": True}),
        }
    ),
    "Event": obj(
        {
            "id": ID,
            "at": TIME,
            "kind": STR,
            "library_id": nullable(ID),
            "job_id": nullable(ID),
            "instance": nullable(STR),
            "data": {"type": "object", "additionalProperties": True},
        }
    ),
    "JobEnvelope": obj({"job": ref("Job")}),
    "JobList": obj({"jobs": {"type": "array", "items": ref("Job")}}),
    "JobPage": obj(
        {
            "jobs": {"type": "array", "items": ref("Job")},
            "total": INT,
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
            "offset": INT,
        }
    ),
    "DeletedJob": obj({"deleted_job_id": ID, "media_files_removed": INT}),
    "LibraryEnvelope": obj({"library": ref("Library")}),
    "LibraryList": obj({"libraries": {"type": "array", "items": ref("Library")}}),
    "RemovedLibrary": obj({"deleted_library_id": ID, "jobs_removed": INT, "media_files_removed": INT}),
    "FilePage": obj(
        {
            "files": {"type": "array", "items": ref("MediaFile")},
            "total": INT,
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
            "offset": INT,
        }
    ),
    "EventList": obj({"events": {"type": "array", "items": ref("Event")}}),
    "NewLibrary": obj(
        {
            "path": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_PATH,
                "pattern": NOT_BLANK,
                "description": "An existing directory on the server (404 when there is none there), "
                "inside allowed_roots when that is set (403 otherwise).",
            }
        },
        {
            "name": nullable({"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": SOME_TEXT}),
            "kind": {"type": "string", "enum": list(LIBRARY_KINDS), "default": "mixed"},
            "watch": nullable(
                {
                    "type": "boolean",
                    "description": "Follow the folder's changes (default: [watch] default, true).",
                }
            ),
        },
    ),
    "Instance": obj(
        {
            "id": STR,
            "host": STR,
            "pid": INT,
            "version": STR,
            "started_at": TIME,
            "heartbeat_at": TIME,
            "live": {"type": "boolean"},
            "jobs": {"type": "array", "items": ID},
        }
    ),
    "InstanceList": obj({"instances": {"type": "array", "items": ref("Instance")}}),
    "Webhook": obj(
        {
            "name": STR,
            "url": STR,
            "kinds": {"type": "array", "items": STR},
            "cursor": INT,
            "lag": INT,
            "owner": nullable(STR),
            "lease_expires_at": nullable(TIME),
            "delivered": INT,
            "failed_attempts": INT,
            "dead": INT,
            "last_success_at": nullable(TIME),
            "last_failure_at": nullable(TIME),
            "last_error": nullable(STR),
            "dead_deliveries": {
                "type": "array",
                "items": obj(
                    {"event_id": ID, "kind": STR, "attempts": INT, "error": nullable(STR), "at": TIME}
                ),
            },
        }
    ),
    "WebhookList": obj({"webhooks": {"type": "array", "items": ref("Webhook")}}),
    "SafeguardStatus": {
        "type": "object",
        "description": "The health snapshot, watchdog/validator/cleanup counters and the effective config.",
        "additionalProperties": True,
    },
    "CleanupReport": {
        "type": "object",
        "description": "What emergency cleanup did.",
        "additionalProperties": True,
    },
}
