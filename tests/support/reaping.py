"""The processes a test spawned, found by a tag in their environment, and killed with their process groups.

Children inherit the environment, so an instance's workers and tools carry the tag too, even once a
kill -9 of their parent left them orphaned: the tag finds them where a parent/child walk no longer can.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid

import psutil

from tests.support.waiting import wait_for

TAG_VAR = "TESTS_SPAWN_TAG"  # not SCANGUARD_*: the instances' own settings stay as the test gave them


class SpawnedProcesses:
    """Owns one tag: every process started with `env()` (and every descendant) carries it until killed."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex

    def env(self) -> dict[str, str]:
        """The variable to add to a child's environment."""
        return {TAG_VAR: self.tag}

    def processes(self) -> list[psutil.Process]:
        """The live processes carrying this tag (zombies count as gone: they are dead, only not yet reaped)."""
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(TAG_VAR) == self.tag:
                    found.append(proc)
        return found

    def kill_all(self, timeout: float = 30) -> list[psutil.Process]:
        """SIGKILL every tagged process and its process group until none is left; the survivors, if any."""
        own_group = os.getpgid(0)

        def killed() -> bool:
            alive = self.processes()
            for proc in alive:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    group = os.getpgid(proc.pid)
                    if group != own_group:  # a child in our own group is killed alone, never the group
                        os.killpg(group, signal.SIGKILL)
                    os.kill(proc.pid, signal.SIGKILL)  # a stopped process dies of SIGKILL too
            return not alive

        with contextlib.suppress(AssertionError):
            wait_for(killed, timeout, "every spawned process to die", interval=0.1)
        return self.processes()
