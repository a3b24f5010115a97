"""JSON text encoded before it reaches the store (a worker encoded a file's meta), written as it is."""

from __future__ import annotations

import json
from typing import Any

from scanguard.records import JsonText


def dumps(value: Any) -> str:
    """The engines' JSON serializer: JsonText as it is, anything else encoded as json.dumps does."""
    if type(value) is JsonText:
        return str.__str__(value)
    return json.dumps(value)
