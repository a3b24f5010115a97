"""The filesystem-type probe: the longest mount point above a path, from mountinfo; network types poll."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanguard.watching.fstype import filesystem_type, is_network

pytestmark = pytest.mark.timeout(10)

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /srv/media rw,relatime shared:2 - nfs4 server:/export rw,vers=4.2
31 30 0:41 / /srv/media/local rw,relatime shared:3 - xfs /dev/sdb1 rw
32 22 0:42 / /mnt/my\\040share rw,relatime shared:4 - cifs //nas/share rw
33 22 0:43 / /mnt/cloud rw,relatime shared:5 - fuse.rclone remote: rw
"""


@pytest.fixture
def mountinfo(tmp_path: Path) -> Path:
    path = tmp_path / "mountinfo"
    path.write_text(MOUNTINFO)
    return path


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/srv/media/music", "nfs4"),
        ("/srv/media", "nfs4"),
        ("/srv/media/local/films", "xfs"),
        ("/srv/mediaother", "ext4"),
        ("/mnt/my share/x", "cifs"),
        ("/mnt/cloud/photos", "fuse.rclone"),
        ("/home", "ext4"),
    ],
)
def test_the_type_is_the_longest_mount_point_above_the_path(mountinfo: Path, path: str, kind: str) -> None:
    assert filesystem_type(path, mountinfo) == kind


def test_network_and_fuse_filesystems_are_polled_local_ones_watched() -> None:
    assert all(is_network(k) for k in ("nfs", "nfs4", "cifs", "smb3", "9p", "fuse", "fuse.sshfs", "ceph"))
    assert not any(is_network(k) for k in ("ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", "unknown"))


def test_without_mountinfo_the_type_is_unknown_and_watched(tmp_path: Path) -> None:
    assert filesystem_type("/srv", tmp_path / "absent") == "unknown"
    assert filesystem_type(str(tmp_path)) != "unknown"  # this machine's own /proc/self/mountinfo
