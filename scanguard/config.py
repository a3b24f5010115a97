"""Configuration as frozen dataclasses: loaded from TOML, overridden by SCANGUARD_* variables, validated once."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from scanguard.errors import ConfigError
from scanguard.processing.registry import check_names

AUDIO_EXTENSIONS = ("flac", "mp3", "m4a", "aac", "ogg", "opus", "wav", "wma", "aiff", "alac")
VIDEO_EXTENSIONS = ("mkv", "mp4", "m4v", "avi", "mov", "wmv", "webm", "ts", "mpg", "mpeg")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "gif", "webp", "heic", "tif", "tiff", "bmp")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def default_data_dir() -> Path:
    """Where scanguard keeps its database and generated token when not told otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "scanguard"


def _default_database_url() -> str:
    return f"sqlite:///{default_data_dir() / 'scanguard.db'}"


@dataclass(frozen=True, slots=True)
class SafeguardConfig:
    """The seed's SafeguardConfig: intervals, timeouts and retry policy, all in seconds."""

    health_check_interval: float = 30.0
    state_validation_interval: float = 60.0
    cleanup_interval: float = 300.0
    operation_timeout: float = 30.0
    shutdown_timeout: float = 60.0
    max_retries: int = 3
    retry_interval: float = 5.0
    retry_window: float = 600.0
    orphaned_job_threshold: float = 300.0
    stall_threshold: float = 120.0
    watchdog_interval: float = 15.0
    old_completed_job_retention: float = 30 * 86400.0
    event_retention: float = 30 * 86400.0
    emergency_cleanup_enabled: bool = True
    force_kill_timeout: float = 10.0
    lease_ttl: float = 60.0
    auto_resume_orphans: bool = False
    actor_ping_timeout: float = 5.0
    cleanup_batch_size: int = 500


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """Where the data lives: a SQLAlchemy URL (SQLite by default, PostgreSQL for several instances)."""

    url: str = field(default_factory=_default_database_url)
    busy_timeout: float = 5.0
    busy_retries: int = 8
    pool_size: int = 5
    echo: bool = False


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The admin HTTP surface: bind address, bearer token, limits."""

    host: str = "127.0.0.1"
    port: int = 8080
    admin_token: str = ""
    allowed_roots: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """How a library is walked and written."""

    batch_size: int = 1000
    batch_seconds: float = 1.0
    follow_symlinks: bool = False
    quick_hash_bytes: int = 0
    empty_root_ratio: float = 0.5
    empty_root_min_files: int = 20
    audio_extensions: tuple[str, ...] = AUDIO_EXTENSIONS
    video_extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    image_extensions: tuple[str, ...] = IMAGE_EXTENSIONS
    processors: tuple[str, ...] = ()
    workers: int = 0
    file_timeout: float = 30.0
    worker_max_files: int = 1000
    worker_memory_limit: int = 2048

    @property
    def worker_count(self) -> int:
        """How many worker processes read files: `workers`, or one per CPU when it is 0."""
        return self.workers or os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Structured logging: level, and json/console/auto (JSON when stderr is not a terminal)."""

    level: str = "info"
    format: str = "auto"


@dataclass(frozen=True, slots=True)
class Config:
    """Every setting of scanguard, by section."""

    safeguards: SafeguardConfig = field(default_factory=SafeguardConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def replace(self, **sections: Any) -> Self:
        """A copy with some sections' fields replaced: `cfg.replace(scan={"batch_size": 10})`."""
        changes: dict[str, Any] = {}
        for name, values in sections.items():
            current = getattr(self, name)
            changes[name] = _build(type(current), name, {**_as_dict(current), **values})
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The effective settings, with the admin token masked."""
        out = {f.name: _as_dict(getattr(self, f.name)) for f in dataclasses.fields(self)}
        if out["http"]["admin_token"]:
            out["http"]["admin_token"] = "***"  # noqa: S105 - a mask, not a secret
        return out


_SECTIONS: dict[str, type[Any]] = {
    "safeguards": SafeguardConfig,
    "database": DatabaseConfig,
    "http": HttpConfig,
    "scan": ScanConfig,
    "log": LogConfig,
}


def _as_dict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _parse_duration(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a duration, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ConfigError(f"{key} must be a duration like 30, '30s', '5m' or '30d', got {value!r}")


def _coerce(key: str, annotation: str, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type, or say which key is wrong."""
    if annotation == "float":
        return _parse_duration(key, value)
    if annotation == "int":
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if annotation == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.lower() in {"1", "true", "yes", "on"}
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if annotation == "str":
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string, got {value!r}")
    if annotation.startswith("tuple"):
        if isinstance(value, str):
            value = [v for v in (p.strip() for p in value.split(",")) if v]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{key} must be a list of strings, got {value!r}")
    raise ConfigError(f"{key}: unsupported setting type {annotation}")  # pragma: no cover


def _build(cls: type[Any], section: str, values: Mapping[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name not in fields:
            raise ConfigError(f"unknown setting {section}.{name}")
        kwargs[name] = _coerce(f"{section}.{name}", str(fields[name].type), value)
    obj = cls(**kwargs)
    _validate(section, obj)
    return obj


def _validate(section: str, obj: Any) -> None:  # noqa: PLR0912 - one check per rule, in one place
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{section}.{f.name}"
        if str(f.type) == "float" and value < 0:
            raise ConfigError(f"{key} must be >= 0, got {value:g}")
        if str(f.type) == "int" and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"{key} must be >= 0, got {value}")
    if isinstance(obj, SafeguardConfig):
        for name in ("retry_interval", "lease_ttl", "operation_timeout", "watchdog_interval"):
            if getattr(obj, name) <= 0:
                raise ConfigError(f"safeguards.{name} must be > 0, got {getattr(obj, name):g}")
    if isinstance(obj, ScanConfig):
        if obj.batch_size < 1:
            raise ConfigError(f"scan.batch_size must be >= 1, got {obj.batch_size}")
        if not 0 <= obj.empty_root_ratio <= 1:
            raise ConfigError(f"scan.empty_root_ratio must be within 0..1, got {obj.empty_root_ratio:g}")
        if obj.file_timeout <= 0:
            raise ConfigError(f"scan.file_timeout must be > 0, got {obj.file_timeout:g}")
        if obj.worker_max_files < 1:
            raise ConfigError(f"scan.worker_max_files must be >= 1, got {obj.worker_max_files}")
        check_names(obj.processors)
    if isinstance(obj, DatabaseConfig) and not obj.url.startswith(("sqlite", "postgresql", "postgres")):
        raise ConfigError(f"database.url must be a sqlite:// or postgresql:// URL, got {obj.url!r}")
    if isinstance(obj, HttpConfig) and not 0 <= obj.port <= 65535:
        raise ConfigError(f"http.port must be within 0..65535, got {obj.port}")
    if isinstance(obj, LogConfig):
        if obj.format not in {"auto", "json", "console"}:
            raise ConfigError(f"log.format must be auto, json or console, got {obj.format!r}")
        if obj.level.lower() not in {"debug", "info", "warning", "error"}:
            raise ConfigError(f"log.level must be debug, info, warning or error, got {obj.level!r}")


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """SCANGUARD_<SECTION>_<NAME> for every setting, plus SCANGUARD_ADMIN_TOKEN."""
    out: dict[str, dict[str, str]] = {}
    for section, cls in _SECTIONS.items():
        for f in dataclasses.fields(cls):
            var = f"SCANGUARD_{section}_{f.name}".upper()
            if var in environ:
                out.setdefault(section, {})[f.name] = environ[var]
    if environ.get("SCANGUARD_ADMIN_TOKEN"):
        out.setdefault("http", {})["admin_token"] = environ["SCANGUARD_ADMIN_TOKEN"]
    return out


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **sections: Mapping[str, Any],
) -> Config:
    """Read TOML (if given), then SCANGUARD_* variables, then keyword sections; validate once.

    `load_config("config.toml", scan={"batch_size": 100})`
    """
    data: dict[str, dict[str, Any]] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        for section, values in raw.items():
            if section not in _SECTIONS or not isinstance(values, dict):
                raise ConfigError(f"unknown config section [{section}] in {path}")
            data[section] = dict(values)
    for section, values in _env_overrides(os.environ if environ is None else environ).items():
        data.setdefault(section, {}).update(values)
    for section, values in sections.items():
        if section not in _SECTIONS:
            raise ConfigError(f"unknown config section {section}")
        data.setdefault(section, {}).update(values)
    return Config(**{name: _build(cls, name, data.get(name, {})) for name, cls in _SECTIONS.items()})
