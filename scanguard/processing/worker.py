"""What runs inside a worker process: its memory cap, and the named processors applied to a chunk of files."""

from __future__ import annotations

import json
import resource
from typing import Any

from scanguard.processing.context import FileContext, describe
from scanguard.processing.registry import NamedProcessor, resolve

MIB = 1024 * 1024
_resolved: dict[tuple[str, ...], tuple[NamedProcessor, ...]] = {}


def initialize(memory_limit_mib: int) -> None:
    """Runs once in each new worker: cap its address space (RLIMIT_AS) when a limit is set."""
    if memory_limit_mib > 0:
        limit = memory_limit_mib * MIB
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def apply(
    processors: tuple[NamedProcessor, ...], ctx: FileContext
) -> tuple[dict[str, Any] | None, str | None]:
    """Every processor that reads this file's media type: ({name: result}, None) or (partial, the error)."""
    meta: dict[str, Any] = {}
    errors: list[str] = []
    for proc in processors:
        if not proc.applies_to(ctx.media_type):
            continue
        try:
            result = proc.function(ctx)
            json.dumps(result)  # what cannot be stored is this file's error, not the batch's
        except Exception as exc:  # noqa: BLE001 - a processor failing on one file is that file's error
            errors.append(f"{proc.name}: {describe(exc)}")
            continue
        meta[proc.name] = result
    return (meta or None), ("; ".join(errors) or None)


def process_chunk(
    names: tuple[str, ...], contexts: list[FileContext]
) -> list[tuple[dict[str, Any] | None, str | None]]:
    """The task a worker runs: each file of the chunk through the named processors, in order."""
    processors = _resolved.get(names)
    if processors is None:
        processors = _resolved[names] = resolve(names)
    return [apply(processors, ctx) for ctx in contexts]
