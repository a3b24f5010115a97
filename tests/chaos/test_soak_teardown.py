"""The soak's teardown: a soak that fails leaves no process of its own behind (issue 16, item 14)."""

from __future__ import annotations

import random
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from tests.chaos.test_soak import Soak, running_soak
from tests.support import postgres
from tests.support.hostproc import alive
from tests.support.reaping import TAG_VAR

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow, pytest.mark.postgres]


class FailsOnPurpose(Exception):
    """The soak body's failure, raised at once."""


def _tagged(tag: str) -> list[psutil.Process]:
    """Every live process on this machine whose environment carries the soak's tag (psutil, not the reaper)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(TAG_VAR) == tag:
                found.append(proc)
        except psutil.Error:
            continue
    return found


@dataclass
class Witness:
    """What the failing soak left for the test to check afterwards."""

    tag: str = ""
    pids: set[int] = field(default_factory=set)
    soak: Soak | None = None
    orphan: subprocess.Popen[bytes] | None = None


def _soak_that_fails_at_once(
    url: str, pg: postgres.ThrowawayServer, tmp_path: Path, witness: Witness
) -> None:
    with running_soak(url, pg, tmp_path, random.Random(0)) as soak:
        witness.soak, witness.tag = soak, soak.spawned.tag
        witness.pids = {node.server.pid for node in soak.nodes}
        assert len(alive(witness.pids)) == len(soak.nodes)
        assert len(_tagged(witness.tag)) >= len(soak.nodes)
        soak.nodes[1].server.signal(signal.SIGSTOP)  # a frozen one is stopped too
        # as a worker orphaned by a kill -9 would be: the tag, a session of its own, no instance as parent
        witness.orphan = subprocess.Popen(["sleep", "600"], env=soak.spawned.env(), start_new_session=True)
        witness.pids.add(witness.orphan.pid)
        raise FailsOnPurpose


def test_a_soak_that_fails_at_once_leaves_no_scanguard_process_behind(
    throwaway_pg: postgres.ThrowawayServer, tmp_path: Path
) -> None:
    """The instance set is up (one of them frozen), the body raises: afterwards none of them, nor any process
    that carries the soak's tag, is alive, the soak's threads are gone, and the body's failure surfaces."""
    url = postgres.create_database(throwaway_pg.admin_url)
    witness = Witness()
    try:
        with pytest.raises(FailsOnPurpose):
            _soak_that_fails_at_once(url, throwaway_pg, tmp_path, witness)
    finally:
        postgres.drop_database(throwaway_pg.admin_url, url)
    assert witness.soak is not None
    assert witness.orphan is not None
    assert len(witness.pids) == 4
    assert alive(witness.pids) == set(), "an instance of the failed soak is still running"
    assert _tagged(witness.tag) == [], "a process spawned by the failed soak is still running"
    assert witness.orphan.wait(5) == -signal.SIGKILL  # reaped here (it is this test's child): killed
    assert [t.name for t in witness.soak.threads if t.is_alive()] == []
    assert not witness.soak.taps.running()
