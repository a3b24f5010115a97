"""Which filesystem a library's root lives on, from /proc/self/mountinfo: network ones send no events."""

from __future__ import annotations

import os
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
# filesystems where changes made elsewhere (the server, other clients) never reach inotify
NETWORK_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb",
        "smb2",
        "smb3",
        "smbfs",
        "9p",
        "ceph",
        "glusterfs",
        "afs",
        "lustre",
        "davfs",
        "fuse",
        "sshfs",
        "ncpfs",
        "coda",
        "beegfs",
        "gpfs",
        "virtiofs",
    }
)


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1 : i + 4]) == 3 and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def filesystem_type(path: str, mountinfo: Path = MOUNTINFO) -> str:
    """The type of the filesystem holding `path` (the longest mount point above it): "ext4", "nfs4",
    "fuse.sshfs", ...; "unknown" when mountinfo cannot be read (not Linux)."""
    try:
        lines = mountinfo.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError:
        return "unknown"
    target = os.path.realpath(path)
    best, kind = -1, "unknown"
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5:
            continue
        point = _unescape(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best:
            best, kind = len(point), right.split()[0]
    return kind


def is_network(kind: str) -> bool:
    """Whether inotify cannot be trusted on this filesystem type (fuse.* included)."""
    return kind in NETWORK_TYPES or kind.split(".", 1)[0] in NETWORK_TYPES
