"""schemathesis over /api/openapi.json against a live `scanguard serve`: no 5xx, no response off the document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.http.conftest import TOKEN, Api, ServerProcess, server_env
from tests.support.trees import build_tree

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with a couple of libraries and jobs, so that generated ids sometimes hit real rows."""
    root = tmp_path_factory.mktemp("schemathesis")
    for name in ("one", "two"):
        build_tree(root / name, 20, 2)
    server = ServerProcess(root, f"sqlite:///{root / 'scanguard.db'}", server_env(root / "data"), ())
    api = Api(server.url)
    for name in ("one", "two"):
        lib = api.post("/api/admin/libraries", json={"path": str(root / name)}).json["library"]["id"]
        api.wait_job(api.post(f"/api/admin/scanner/safe/start/{lib}").json["job"]["id"], ("completed",))
    api.close()
    yield server
    assert server.terminate() == 0


@pytest.fixture(scope="module")
def api_schema(live_server: ServerProcess) -> Any:
    return schemathesis.openapi.from_url(live_server.url + "/api/openapi.json")


STREAM = "/api/admin/events/stream"  # endless by design: covered by the SSE tests instead


@pytest.mark.timeout(120)
def test_every_operation_answers_without_5xx_and_within_the_document(
    api_schema: Any, live_server: ServerProcess
) -> None:
    """Positive and negative cases for each operation; any failing check fails with the shrunk example."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    documented = {(m.upper(), p) for p, item in api_schema.raw_schema["paths"].items() for m in item}
    # schemathesis leaves out the document it was loaded from
    assert {(op.method.upper(), op.path) for op in operations} == documented - {("GET", "/api/openapi.json")}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for operation in operations:
        if operation.path == STREAM:
            continue

        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
            | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
        )
        def exercise(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        exercise()

    api = Api(live_server.url)
    try:
        metrics = api.get("/metrics", token=None).text
    finally:
        api.close()
    answered = _requests_by_status(metrics)
    assert sum(answered.values()) > 200, answered
    assert not [s for s in answered if s.startswith("5")], answered
    assert answered.get("400", 0) > 20, answered
    assert answered.get("200", 0) > 20, answered


def _requests_by_status(metrics: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("scanguard_http_requests_total{"):
            status = line.split('status="', 1)[1].split('"', 1)[0]
            counts[status] = counts.get(status, 0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_the_document_covers_every_route_of_the_app(live_server: ServerProcess) -> None:
    """Each route the app serves is in the document, and each documented operation is served."""
    from scanguard.config import load_config
    from scanguard.http import create_app
    from scanguard.http.openapi import openapi_document

    app = create_app(load_config(environ={}, http={"admin_token": "x"}))
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    documented = {(m.upper(), p) for p, item in openapi_document()["paths"].items() for m in item}
    assert served == documented
    assert Path(live_server.log_path).exists()
