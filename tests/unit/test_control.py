"""Control requests: each job operation maps to its own message; anything else is refused, never a delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from scanguard.control import DeleteJob, PauseScan, ResumeScan, job_request
from scanguard.errors import UnknownOperation
from scanguard.records import Job, Library

pytestmark = pytest.mark.timeout(10)
NOW = datetime(2026, 12, 4, tzinfo=UTC)
LIBRARY = Library(3, "/media/music", "music", "music", NOW)


def _job(status: Any) -> Job:
    return Job(
        7, 3, status, 0, 0, 0, 0, 0, 0, 0, None, 0.0, None, {}, NOW, "me", 1, 0, None, None, 0.0,
        NOW, NOW, NOW, None,
    )  # fmt: skip


def test_each_job_operation_becomes_its_own_message() -> None:
    assert isinstance(job_request("pause_scan", 0.0, _job("running"), LIBRARY).message, PauseScan)
    assert isinstance(job_request("resume_scan", 0.0, _job("paused"), LIBRARY).message, ResumeScan)
    assert isinstance(job_request("delete_job", 0.0, _job("paused"), LIBRARY).message, DeleteJob)


@pytest.mark.parametrize("op", ["frobnicate", "start_scan", "remove_library", "PAUSE_SCAN", ""])
def test_an_unknown_operation_is_refused_with_a_typed_error_and_never_becomes_a_delete(op: str) -> None:
    with pytest.raises(UnknownOperation) as refused:
        job_request(op, 0.0, _job("running"), LIBRARY)  # type: ignore[arg-type]
    assert refused.value.code == "unknown_operation"
    assert repr(op) in refused.value.message
