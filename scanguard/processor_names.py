"""The processor names `[scan] processors` may hold: the built-ins (and what each reads) and host import paths."""

from __future__ import annotations

import re
from collections.abc import Iterable

from scanguard.errors import ConfigError

BUILTIN_MEDIA: dict[str, str] = {"audio_tags": "audio", "image_info": "image", "video_probe": "video"}
"""Each built-in processor's name and the media type it reads."""
KEY = "scan.processors"
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def check_names(names: Iterable[str]) -> None:
    """Each name is a built-in or looks like `package.module:function`, once; else ConfigError naming the key."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"{KEY}: {name!r} is named twice")
        seen.add(name)
        if name not in BUILTIN_MEDIA and not _IMPORT_PATH.match(name):
            raise ConfigError(
                f"{KEY}: unknown processor {name!r} (built-ins: {', '.join(BUILTIN_MEDIA)}; "
                "or a host function as 'package.module:function')"
            )
