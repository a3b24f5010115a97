"""A slow filesystem to scan: a read-only FUSE passthrough that sleeps per call, like a NAS's round trips.

    with slow_mount(src, delay=0.001) as mnt:   # src seen at mnt; getattr, readdir and open sleep 1 ms
        ...

The filesystem runs in a child process (this file run as a script, on mfusepy and Debian's libfuse3);
the context manager waits until it is mounted and always unmounts it (`fusermount3 -u`) and reaps the
child, killing it if it does not go. Where FUSE cannot be used (no /dev/fuse, no fusermount3, no binding
or no libfuse3) `fuse_unavailable()` says why, and tests and the bench skip with that reason.

libfuse serves requests on several threads, so calls in flight at once sleep at once: as on a NAS,
latency, not bandwidth, is what a serial walk waits for. The kernel's attribute and entry caches keep
libfuse's defaults (1 s), as an NFS client caches attributes.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_DELAY = 0.001
MOUNT_TIMEOUT = 30.0


def fuse_unavailable() -> str | None:
    """Why a slow FUSE mount cannot be made here, or None when it can."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine"
    if shutil.which("fusermount3") is None:
        return "no fusermount3 (Debian's fuse3 package)"
    probe = subprocess.run(
        [sys.executable, "-c", "import mfusepy"], capture_output=True, text=True, check=False, timeout=60
    )
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines() or ["import failed"]
        return f"the FUSE binding mfusepy does not load: {lines[-1]}"
    return None


@contextlib.contextmanager
def slow_mount(src: str | os.PathLike[str], delay: float = DEFAULT_DELAY) -> Iterator[Path]:
    """Mount `src` read-only through the slow passthrough at a fresh mountpoint; unmount on the way out."""
    mnt = Path(tempfile.mkdtemp(prefix="scanguard-slowfs-"))
    cmd = [sys.executable, __file__, os.fspath(src), str(mnt), "--delay", str(delay)]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(mnt):
            if child.poll() is not None:
                err = child.stderr.read().decode(errors="replace") if child.stderr else ""
                raise RuntimeError(f"the slow FUSE filesystem exited {child.returncode}: {err.strip()}")
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the slow FUSE filesystem was not mounted at {mnt} in {MOUNT_TIMEOUT:g}s")
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(0.02)  # the poll's pause, cut short if the filesystem exits
        yield mnt
    finally:
        if os.path.ismount(mnt):
            subprocess.run(
                ["fusermount3", "-u", "-z", str(mnt)], capture_output=True, check=False, timeout=30
            )
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
        if child.stderr is not None:
            child.stderr.close()
        with contextlib.suppress(OSError):
            mnt.rmdir()


# ---- the filesystem (runs in the child process) -------------------------------------------------------


def _serve(src: str, mnt: str, delay: float) -> None:
    import mfusepy  # only in the child: importing it needs libfuse

    class SlowPassthrough(mfusepy.Operations):  # type: ignore[misc]
        """Read-only passthrough of `src`; getattr, readdir and open each sleep `delay` first."""

        use_ns = True

        def _real(self, path: str) -> str:
            return os.path.join(src, path.lstrip("/"))

        def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
            time.sleep(delay)
            try:
                st = os.lstat(self._real(path))
            except OSError as exc:
                raise mfusepy.FuseOSError(exc.errno or errno.EIO) from exc
            keys = ("st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_gid", "st_size")
            out: dict[str, Any] = {key: getattr(st, key) for key in keys}
            out.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
            return out

        def readdir(self, path: str, fh: int) -> list[str]:
            time.sleep(delay)
            try:
                return [".", "..", *os.listdir(self._real(path))]
            except OSError as exc:
                raise mfusepy.FuseOSError(exc.errno or errno.EIO) from exc

        def readlink(self, path: str) -> str:
            return os.readlink(self._real(path))

        def open(self, path: str, flags: int) -> int:
            time.sleep(delay)
            if flags & (os.O_WRONLY | os.O_RDWR):
                raise mfusepy.FuseOSError(errno.EROFS)
            try:
                return os.open(self._real(path), os.O_RDONLY)
            except OSError as exc:
                raise mfusepy.FuseOSError(exc.errno or errno.EIO) from exc

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            return os.pread(fh, size, offset)

        def release(self, path: str, fh: int) -> int:
            os.close(fh)
            return 0

    mfusepy.FUSE(SlowPassthrough(), mnt, foreground=True, ro=True, fsname="scanguard-slowfs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a read-only FUSE passthrough that sleeps per call")
    parser.add_argument("src")
    parser.add_argument("mnt")
    parser.add_argument("--delay", type=float, default=DEFAULT_DELAY, help="seconds per call (default 0.001)")
    args = parser.parse_args(argv)
    _serve(os.path.abspath(args.src), args.mnt, args.delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
