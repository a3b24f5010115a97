"""The admin API's answers: envelopes around the records, encoded and documented from their declarations.

The objects themselves are the records (scanguard.records) and the request bodies are declared beside their
parsing (scanguard.http.params); the OpenAPI components are msgspec's JSON Schema of all of them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from scanguard.http.params import LibraryPatch, Limit, NewLibrary
from scanguard.records import Count, DeletedJob, Event, Instance, Job, Library, MediaFile, RemovedLibrary
from scanguard.webhooks.records import WebhookState

REF = "#/components/schemas/{name}"
JSON = "application/json"


class Answer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A JSON object the server writes: every field is always there."""


class ErrorBody(Answer, frozen=True):
    code: str
    message: str
    details: dict[str, Any]


class Error(Answer, frozen=True):
    """Every error: one shape, with a stable code and details naming what was wrong."""

    error: ErrorBody


class Health(Answer, frozen=True):
    status: str


class Readiness(Answer, frozen=True):
    status: str
    store_latency_ms: float


class JobEnvelope(Answer, frozen=True):
    job: Job


class JobList(Answer, frozen=True):
    jobs: tuple[Job, ...]


class Paged(Answer, frozen=True):
    """One page of a listing: how many there are in all, and where this page stands."""

    total: Count
    limit: Limit
    offset: Count


class JobPage(Paged, frozen=True):
    jobs: tuple[Job, ...]


class LibraryEnvelope(Answer, frozen=True):
    library: Library


class LibraryList(Answer, frozen=True):
    libraries: tuple[Library, ...]


class FilePage(Paged, frozen=True):
    files: tuple[MediaFile, ...]


class EventList(Answer, frozen=True):
    events: tuple[Event, ...]


class InstanceList(Answer, frozen=True):
    instances: tuple[Instance, ...]


ANSWERS: tuple[type, ...] = (Error, Health, Readiness, JobEnvelope, JobList, JobPage, DeletedJob)
ANSWERS += (LibraryEnvelope, LibraryList, RemovedLibrary, FilePage, EventList, InstanceList)
BODIES = (NewLibrary, LibraryPatch)


def reply(answer: object, status: int = 200) -> web.Response:
    """An answer as the JSON response msgspec encodes from its declaration."""
    return web.Response(body=msgspec.json.encode(answer), status=status, content_type=JSON)


def _written(schema: dict[str, Any]) -> dict[str, Any]:
    """An object the server writes has every field, and no other (msgspec requires only those without a
    default: the rule for what a client sends); so no default is documented either."""
    if schema.get("type") != "object" or "properties" not in schema:
        return schema
    fields = {
        name: {k: v for k, v in field.items() if k != "default"}
        for name, field in schema["properties"].items()
    }
    return {**schema, "properties": fields, "required": list(fields), "additionalProperties": False}


def _free(description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "additionalProperties": True}


class WebhookTarget(Answer, frozen=True):
    """What the configuration adds to a webhook's delivery state: where it posts, and which kinds."""

    url: str
    kinds: tuple[str, ...]


def components() -> dict[str, Any]:
    """The document's component schemas: every answer and body, and the objects inside them."""
    _, schemas = msgspec.json.schema_components(
        (*ANSWERS, *BODIES, WebhookTarget, WebhookState), ref_template=REF
    )
    bodies = {body.__name__ for body in BODIES}
    written = {name: schema if name in bodies else _written(schema) for name, schema in schemas.items()}
    # the Runtime shows a webhook as its target and its delivery state in one object
    target, state = written.pop("WebhookTarget"), written.pop("WebhookState")
    webhook = {
        **state,
        "title": "Webhook",
        "description": "A webhook (never its secret) and its delivery state.",
    }
    webhook = _written({**webhook, "properties": {**target["properties"], **state["properties"]}})
    webhooks = {
        "type": "object",
        "properties": {"webhooks": {"type": "array", "items": {"$ref": REF.format(name="Webhook")}}},
    }
    return {
        **written,
        "Webhook": webhook,
        "WebhookList": _written(webhooks),
        "SafeguardStatus": _free(
            "The health snapshot, watchdog/validator/cleanup counters and the effective config."
        ),
        "CleanupReport": _free("What emergency cleanup did."),
    }
