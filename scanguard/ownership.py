"""Who owns a running job: instance ids (host:pid:start) and whether their process is gone."""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime

import psutil


@dataclass(frozen=True, slots=True)
class Owner:
    """A parsed instance id."""

    host: str
    pid: int
    started: int

    @classmethod
    def parse(cls, owner: str | None) -> Owner | None:
        if not owner:
            return None
        parts = owner.rsplit(":", 3)  # host:pid:start:nonce; the host may itself hold colons
        try:
            return cls(parts[0], int(parts[1]), int(parts[2]))
        except (ValueError, IndexError):
            return None

    def is_local(self) -> bool:
        return self.host == socket.gethostname()

    def process_gone(self) -> bool:
        """On this host: the pid is dead, or was reused by a process that started after the owner."""
        try:
            created: float = psutil.Process(self.pid).create_time()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return True
        except psutil.AccessDenied:
            return False
        return created > self.started + 1


def quiet_seconds(heartbeat_at: datetime | None, now: datetime) -> float:
    """How long a job's committed heartbeat has been silent (forever when it never beat)."""
    return (now - heartbeat_at).total_seconds() if heartbeat_at else float("inf")


def nobody_runs(
    owner: str | None, lease_expires: datetime | None, quiet: float, threshold: float, now: datetime
) -> bool:
    """Whether a running job of another instance is an orphan: its owner is gone, or its lease expired
    and its heartbeat has been quiet longer than the threshold (a frozen or cut-off process)."""
    lease_expired = lease_expires is None or lease_expires <= now
    return owner_is_dead(owner, lease_expired=lease_expired) or (lease_expired and quiet > threshold)


def abandoned(
    owner: str | None,
    here: str,
    supervised: bool,
    lease_expires: datetime | None,
    quiet: float,
    threshold: float,
    now: datetime,
) -> bool:
    """The one orphan rule (the watchdog's sweep, the emergency cleanup): a running job is an orphan when
    it is owned by this instance `here` with no live scan or restart pending (`supervised` False) and
    quiet past the threshold (a younger one is still being launched), or owned elsewhere and nobody runs
    it there (see nobody_runs)."""
    if owner == here:
        return not supervised and quiet > threshold
    return nobody_runs(owner, lease_expires, quiet, threshold, now)


def lease_held_by_another(owner: str | None, expires_at: datetime | None, here: str, now: datetime) -> bool:
    """Whether a lease (a library's scan, a webhook cursor, a watcher) is held by another live owner: the
    one orphan rule for every lease. A local owner whose process is gone holds nothing, at once; any other
    owner holds its lease until it expires (a frozen process on this host included)."""
    if owner is None or owner == here or expires_at is None or expires_at <= now:
        return False
    parsed = Owner.parse(owner)  # an owner that cannot be read cannot be proven dead: its lease decides
    return not (parsed is not None and parsed.is_local() and parsed.process_gone())


def owner_is_dead(owner: str | None, *, lease_expired: bool) -> bool:
    """A local owner is dead when its process is; a remote one when its lease has expired."""
    parsed = Owner.parse(owner)
    if parsed is None:
        return True
    if parsed.is_local():
        return parsed.process_gone()
    return lease_expired


def scanguard_version() -> str:
    """The installed scanguard's version, as an instance registers it."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - only when registering

    try:
        return version("scanguard")
    except PackageNotFoundError:
        return "unknown"


def instance_id() -> str:
    """host:pid:start-time:nonce — written as `owner` on what this process runs (unique per Runtime)."""
    return f"{socket.gethostname()}:{os.getpid()}:{int(time.time())}:{secrets.token_hex(4)}"
