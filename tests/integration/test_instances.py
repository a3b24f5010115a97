"""DESIGN §8: the instances table — registered at start, renewed by the watchdog, removed by a clean stop."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

import scanguard
from tests.support.db import db_exec
from tests.support.trees import build_tree
from tests.support.waiting import GatedFileSystem, wait_for

pytestmark = pytest.mark.timeout(60)


def test_every_runtime_on_a_database_is_listed_live_with_the_jobs_it_runs_and_leaves_on_stop(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """Two runtimes on one database: each lists both (host, pid, version, live) and which runs the held
    scan; the one that stops cleanly is gone from the list at once."""
    root = tmp_path / "lib"
    build_tree(root, 300, 0)
    gate = GatedFileSystem(root / "Artist 001")
    one = runtime_factory(make_config(scan={"batch_size": 5}), fs=gate)
    two = runtime_factory()
    job = one.start_scan(one.add_library(root).id)
    try:
        assert gate.reached.wait(30)
        listed = {i.id: i for i in two.instances()}
        assert set(listed) == {one.instance, two.instance}
        mine = listed[one.instance]
        assert (mine.host, mine.live, mine.jobs) == (socket.gethostname(), True, (job.id,))
        assert mine.pid > 0
        assert mine.version == scanguard_version()
        assert listed[two.instance].jobs == ()
        assert mine.to_dict()["jobs"] == [job.id]
    finally:
        gate.release.set()
    one.wait_for_job(job.id, timeout=30)
    one.stop()
    assert [i.id for i in two.instances()] == [two.instance]


def test_an_instance_whose_heartbeat_is_older_than_the_lease_is_shown_gone_and_a_tick_renews_it(
    db_url: str,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """A heartbeat pushed into the past reads as gone; the watchdog's next tick makes it live again."""
    rt = runtime_factory(make_config(safeguards={"watchdog_interval": 0.2, "lease_ttl": 5}))
    old = "'2000-01-01 00:00:00'" if db_url.startswith("sqlite") else "'2000-01-01T00:00:00Z'::timestamptz"
    db_exec(db_url, f"UPDATE instances SET heartbeat_at = {old}")
    assert [i.live for i in rt.instances()] == [False]
    wait_for(lambda: [i.live for i in rt.instances()] == [True], 10, "the watchdog to renew the heartbeat")


def test_cleanup_removes_the_row_of_an_instance_gone_for_more_than_a_day_and_keeps_the_live_ones(
    db_url: str, runtime_factory: Callable[..., scanguard.Runtime]
) -> None:
    """A killed instance's row is shown as gone, then removed by retention after a day."""
    rt = runtime_factory()
    old = "'2000-01-01 00:00:00'" if db_url.startswith("sqlite") else "'2000-01-01T00:00:00Z'::timestamptz"
    db_exec(
        db_url,
        "INSERT INTO instances (id, host, pid, version, started_at, heartbeat_at) "
        f"VALUES ('elsewhere:1:1:dead', 'elsewhere', 1, '0.1.0', {old}, {old})",
    )
    assert {i.id: i.live for i in rt.instances()} == {rt.instance: True, "elsewhere:1:1:dead": False}
    assert rt.run_cleanup()["gone_instances"] == 1
    assert [i.id for i in rt.instances()] == [rt.instance]


def scanguard_version() -> str:
    from scanguard.ownership import scanguard_version as version

    return version()
