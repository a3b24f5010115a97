"""The types of settings: each annotation carries how its value is read and the range it must lie in.

A setting is one typed field (`file_timeout: Interval = 30.0`); its type, never its name, picks the
parser, so a ratio is never read as a duration and a duration keeps its units. TOML values and
SCANGUARD_* strings go through the same rule, and every refusal names the key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from scanguard.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Rule:
    """How one kind of setting is read (from TOML or an environment string) and the bounds it must keep."""

    expected: str  # what the refusal says the value must be
    parse: Callable[[Any], Any]  # raises ValueError or TypeError on a value of the wrong type or unit
    low: float | None = None
    above: bool = False  # `low` itself is refused
    high: float | None = None
    choices: frozenset[str] | None = None

    def read(self, key: str, value: Any) -> Any:
        """The value as its field's type, or ConfigError naming `key`."""
        try:
            parsed = self.parse(value)
        except (ValueError, TypeError):
            raise ConfigError(f"{key} must be {self.expected}, got {value!r}") from None
        if self.low is not None and (parsed <= self.low if self.above else parsed < self.low):
            raise ConfigError(f"{key} must be {'>' if self.above else '>='} {self.low:g}, got {parsed:g}")
        if self.high is not None and parsed > self.high:
            raise ConfigError(f"{key} must be within {self.low or 0:g}..{self.high:g}, got {parsed:g}")
        if self.choices is not None and str(parsed).lower() not in self.choices:
            raise ConfigError(f"{key} must be {self.expected}, got {value!r}")
        return parsed


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    return value


def _duration(value: Any) -> float:
    if isinstance(_not_bool(value), int | float):
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(value)
    return float(match.group(1)) * _UNITS[match.group(2)]


def _number(value: Any) -> float:
    if isinstance(_not_bool(value), int | float):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise TypeError(value)


def _integer(value: Any) -> int:
    if isinstance(_not_bool(value), int):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise TypeError(value)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise TypeError(value)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(value)


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in (p.strip() for p in value.split(",")) if v]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TypeError(value)


def _database_url(value: Any) -> str:
    if isinstance(value, str) and value.startswith(("sqlite", "postgresql", "postgres")):
        return value
    raise ValueError(value)


def one_of(*choices: str) -> Rule:
    """A string among `choices` (any case)."""
    return Rule(f"one of {', '.join(choices)}", _text, choices=frozenset(choices))


_DURATION_TEXT = "a duration like 30, '30s', '5m' or '30d'"

Duration = Annotated[float, Rule(_DURATION_TEXT, _duration, low=0)]
"""Seconds, >= 0: a number or a string with a unit (ms, s, m, h, d)."""
Interval = Annotated[float, Rule(_DURATION_TEXT, _duration, low=0, above=True)]
"""A duration that must be > 0 (a period or a timeout)."""
Ratio = Annotated[float, Rule("a number within 0..1", _number, low=0, high=1)]
"""A plain number within 0..1 (never a duration)."""
Count = Annotated[int, Rule("an integer", _integer, low=0)]
"""An integer >= 0."""
AtLeastOne = Annotated[int, Rule("an integer", _integer, low=1)]
"""An integer >= 1."""
Port = Annotated[int, Rule("an integer", _integer, low=0, high=65535)]
"""A TCP port (0: any free one)."""
Niceness = Annotated[int, Rule("an integer within 0..19", _integer, low=0, high=19)]
"""How much lower a helper process's CPU priority is than the service's (a nice increment)."""
Flag = Annotated[bool, Rule("true or false", _flag)]
"""A boolean; in the environment 1/0, true/false, yes/no, on/off."""
Text = Annotated[str, Rule("a string", _text)]
"""Any string."""
Names = Annotated[tuple[str, ...], Rule("a list of strings", _names)]
"""A list of strings; in the environment, comma-separated."""
DatabaseUrl = Annotated[str, Rule("a sqlite:// or postgresql:// URL", _database_url)]
"""A SQLAlchemy URL of a supported database."""
LogFormat = Annotated[str, one_of("auto", "json", "console")]
LogLevel = Annotated[str, one_of("debug", "info", "warning", "error")]


def rule_of(annotation: Any) -> Rule:
    """The Rule an Annotated setting type carries."""
    for meta in getattr(annotation, "__metadata__", ()):
        if isinstance(meta, Rule):
            return meta
    raise TypeError(f"{annotation!r} is not a setting type (Annotated with a Rule)")
