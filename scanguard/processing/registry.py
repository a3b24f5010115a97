"""Processor names: the built-ins, a host's `package.module:function`, checked and resolved to callables."""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from scanguard.errors import ConfigError
from scanguard.processing.context import FileContext
from scanguard.processor_names import BUILTIN_MEDIA, KEY, check_names

# name -> (the media type it reads, where its function lives)
BUILTINS: dict[str, tuple[str, str]] = {
    name: (media_type, f"scanguard.processing.builtins:{name}") for name, media_type in BUILTIN_MEDIA.items()
}


@dataclass(frozen=True, slots=True)
class NamedProcessor:
    """One resolved processor: its name (the key of its results in `meta`), what it reads, its function."""

    name: str
    media_type: str | None  # None: every media file (a host's processor)
    function: Callable[[FileContext], Any]

    def applies_to(self, media_type: str) -> bool:
        return self.media_type is None or self.media_type == media_type


def media_types(names: Iterable[str]) -> frozenset[str] | None:
    """The media types some named processor reads; None when a host processor reads every file."""
    types: set[str] = set()
    for name in names:
        if name not in BUILTINS:
            return None
        types.add(BUILTINS[name][0])
    return frozenset(types)


def _load(path: str, name: str) -> Callable[[FileContext], Any]:
    module_name, _, attr = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:
        raise ConfigError(f"{KEY}: {name!r} does not import: {type(exc).__name__}: {exc}") from exc
    if not callable(target):
        raise ConfigError(f"{KEY}: {name!r} is not callable")
    function: Callable[[FileContext], Any] = target
    return function


def resolve(names: Iterable[str]) -> tuple[NamedProcessor, ...]:
    """Import every named processor; ConfigError naming the key when one does not import or cannot run."""
    names = tuple(names)
    check_names(names)
    out: list[NamedProcessor] = []
    for name in names:
        if name in BUILTINS:
            media_type, path = BUILTINS[name]
            if name == "video_probe" and shutil.which("ffprobe") is None:
                raise ConfigError(
                    f"{KEY}: video_probe needs ffprobe on PATH (Debian: apt-get install ffmpeg)"
                )
            out.append(NamedProcessor(name, media_type, _load(path, name)))
        else:
            out.append(NamedProcessor(name, None, _load(name, name)))
    return tuple(out)
