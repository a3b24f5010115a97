"""Instance ids and the liveness of their processes, which decide what counts as an orphan."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from scanguard.ownership import Owner, instance_id, lease_held_by_another, owner_is_dead

pytestmark = pytest.mark.timeout(30)


def test_an_instance_id_names_host_pid_and_start_and_is_unique_per_runtime() -> None:
    """Two ids made in the same second by the same process differ, and both parse back to this process."""
    first, second = instance_id(), instance_id()
    assert first != second
    for ident in (first, second):
        owner = Owner.parse(ident)
        assert owner is not None
        assert (owner.host, owner.pid) == (socket.gethostname(), os.getpid())
        assert abs(owner.started - time.time()) < 60


def test_this_process_is_alive_and_a_reaped_process_is_dead() -> None:
    """A local owner is dead exactly when its process is gone, whatever its lease says."""
    assert not owner_is_dead(instance_id(), lease_expired=True)
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    gone = f"{socket.gethostname()}:{int(child.stdout)}:{int(time.time()) - 5}:abcd"
    assert owner_is_dead(gone, lease_expired=False)


def test_a_reused_pid_started_after_the_owner_does_not_keep_it_alive() -> None:
    """Our own pid with a start time long before this process began is another, dead owner."""
    stale = f"{socket.gethostname()}:{os.getpid()}:{int(time.time()) - 10 * 365 * 86400}:abcd"
    assert owner_is_dead(stale, lease_expired=False)


def test_a_remote_owner_is_dead_only_when_its_lease_expired() -> None:
    """Another host's process cannot be checked: its lease decides."""
    remote = "elsewhere.example:123:1700000000:abcd"
    assert not owner_is_dead(remote, lease_expired=False)
    assert owner_is_dead(remote, lease_expired=True)


@pytest.mark.parametrize("garbage", ["", "nonsense", "host:pid:start", None])
def test_an_unreadable_owner_counts_as_gone(garbage: str | None) -> None:
    """A row whose owner cannot be read is nobody's: the watchdog may adopt it."""
    assert owner_is_dead(garbage, lease_expired=False)


def _dead_local_owner() -> str:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return f"{socket.gethostname()}:{int(child.stdout)}:{int(time.time()) - 5}:abcd"


def test_a_lease_of_a_dead_process_on_this_host_is_free_at_once_though_unexpired() -> None:
    """The one orphan rule for every lease: a local owner whose process is gone holds nothing."""
    now = datetime.now(UTC)
    later = now + timedelta(seconds=60)
    here = instance_id()
    assert not lease_held_by_another(_dead_local_owner(), later, here, now)
    assert lease_held_by_another(instance_id(), later, here, now), "a live process on this host holds it"
    assert not lease_held_by_another(here, later, here, now), "one's own lease is not another's"


def test_a_remote_or_frozen_owner_holds_its_lease_until_it_expires() -> None:
    """Another host cannot be checked, and a live (perhaps frozen) local process may wake: expiry decides."""
    now = datetime.now(UTC)
    here = instance_id()
    remote = "elsewhere.example:123:1700000000:abcd"
    assert lease_held_by_another(remote, now + timedelta(seconds=1), here, now)
    assert not lease_held_by_another(remote, now - timedelta(seconds=1), here, now)
    assert not lease_held_by_another(instance_id(), now, here, now), "a live local owner's expired lease"
    assert not lease_held_by_another(None, now + timedelta(seconds=60), here, now), "a released lease"


def test_a_lease_whose_owner_cannot_be_read_is_held_until_it_expires() -> None:
    """Only a process proven gone frees a lease early; anything else waits for its expiry."""
    now = datetime.now(UTC)
    assert lease_held_by_another("instance-a", now + timedelta(seconds=1), instance_id(), now)
