"""Each API object and bound is declared once: the JSON the server writes, the document's components and the
request parsing all come from the same declaration, so they cannot drift apart."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from scanguard.errors import BadRequest
from scanguard.http import params
from scanguard.http.openapi import ROUTES, openapi_document
from scanguard.records import DeletedJob, Event, Instance, Job, Library, MediaFile, RemovedLibrary

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
JOB = Job(
    7, 3, "running", 10, 4, 1, 0, 0, 4096, 0, 20, 33.3333, "a/b", {"hidden": 1}, NOW, "me", 2, 0, None,
    None, 2.0, NOW, NOW, NOW, None, scope=("a",), trigger="watch",
)  # fmt: skip
RECORDS: list[Any] = [
    JOB,
    Library(3, "/music", "music", "music", NOW),
    MediaFile(9, 3, 7, "a/b.flac", 10, 1.5, "audio", None, NOW, NOW, None, None, {"audio_tags": {}}),
    Event(11, NOW, "job.started", 3, 7, "me", {"x": 1}),
    Instance("me", "host", 42, "0.1.0", NOW, NOW, True, (7,)),
    DeletedJob(7, 3, 12),
    RemovedLibrary(3, 1, 12),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_an_object_shows_exactly_the_fields_its_component_documents_all_required(record: Any) -> None:
    schema = openapi_document()["components"]["schemas"][type(record).__name__]
    shown = record.to_dict()
    assert set(shown) == set(schema["properties"]) == set(schema["required"])
    assert schema["additionalProperties"] is False


def test_times_are_iso_8601_utc_and_tuples_are_lists_in_the_json() -> None:
    shown = JOB.to_dict()
    assert (shown["created_at"], shown["finished_at"], shown["scope"]) == (
        "2024-05-01T12:00:00Z",
        None,
        ["a"],
    )


def test_a_jobs_rate_eta_and_rounded_progress_are_derived_again_whenever_it_changes() -> None:
    assert (JOB.progress, JOB.files_per_second, JOB.eta_seconds) == (33.33, 2.0, 8.0)
    later = dataclasses.replace(JOB, files_processed=8, active_seconds=2.0, progress=66.666)
    assert (later.progress, later.files_per_second, later.eta_seconds) == (66.67, 4.0, 3.0)
    assert dataclasses.replace(JOB, status="paused").eta_seconds is None


def test_the_removed_library_keeps_its_library_id_for_host_code_and_shows_the_deleted_id() -> None:
    removed = RemovedLibrary(3, 1, 12)
    assert (removed.library_id, removed.to_dict()["deleted_library_id"]) == (3, 3)


def _request(query: str) -> Any:
    return make_mocked_request("GET", f"/x?{query}")


def _bounded_parameters() -> list[tuple[str, type[params.Query], str, int, int]]:
    """(route, its query Struct, parameter, minimum, maximum) for every bounded integer query parameter."""
    document = openapi_document()
    found = []
    for route in ROUTES:
        if route.query is None:
            continue
        op = document["paths"][route.path][route.method]
        for p in op["parameters"]:
            schema = p["schema"]
            if p["in"] == "query" and schema.get("type") == "integer":
                found.append((route.op_id, route.query, p["name"], schema["minimum"], schema["maximum"]))
    return found


@pytest.mark.parametrize(("op_id", "model", "name", "low", "high"), _bounded_parameters())
def test_a_query_bound_the_document_states_is_the_bound_the_parser_enforces(
    op_id: str, model: type[params.Query], name: str, low: int, high: int
) -> None:
    assert getattr(params.query(_request(f"{name}={low}"), model), name) == low
    assert getattr(params.query(_request(f"{name}={high}"), model), name) == high
    for outside in (low - 1, high + 1):
        with pytest.raises(BadRequest) as refused:
            params.query(_request(f"{name}={outside}"), model)
        assert refused.value.details["field"] == name, op_id


@pytest.mark.parametrize("spelling", ["01", "+1", "1e3", "1.0", " 1", "0x10", "9" * 40])
def test_an_integer_query_value_has_one_spelling(spelling: str) -> None:
    with pytest.raises(BadRequest):
        params.query(_request(f"limit={spelling}"), params.Paging)


@pytest.mark.parametrize(
    ("spelling", "read"), [("true", True), ("false", False), ("1", None), ("True", None)]
)
def test_a_flag_is_true_or_false(spelling: str, read: bool | None) -> None:
    if read is None:
        with pytest.raises(BadRequest):
            params.query(_request(f"errors={spelling}"), params.FilesQuery)
    else:
        assert params.query(_request(f"errors={spelling}"), params.FilesQuery).errors is read


def test_a_single_valued_parameter_given_twice_is_refused_and_a_repeatable_one_is_a_list() -> None:
    with pytest.raises(BadRequest, match="given once"):
        params.query(_request("limit=1&limit=2"), params.Paging)
    assert params.query(_request("path=a&path=b"), params.StartQuery).path == ["a", "b"]


def test_every_query_parameter_the_parser_reads_is_documented_and_no_other() -> None:
    document = openapi_document()
    for route in ROUTES:
        if route.query is None:
            continue
        op = document["paths"][route.path][route.method]
        documented = {p["name"] for p in op["parameters"] if p["in"] == "query"}
        assert documented == set(route.query.__struct_fields__), route.op_id
