"""Configuration as frozen dataclasses: loaded from TOML, overridden by SCANGUARD_* variables, validated once."""

from __future__ import annotations

import dataclasses
import json
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
    worker_max_files: int = 5000
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
class WebhookConfig:
    """One `[[webhooks]]` entry: where events are POSTed, the secret that signs them, which kinds (prefixes).

    `name` keys the webhook's delivery cursor in the database; it defaults to the URL.
    """

    url: str
    secret: str = field(repr=False)
    kinds: tuple[str, ...]
    name: str = ""

    @property
    def key(self) -> str:
        return self.name or self.url

    def wants(self, kind: str) -> bool:
        return any(kind.startswith(prefix) for prefix in self.kinds)


@dataclass(frozen=True, slots=True)
class WebhookDeliveryConfig:
    """How webhooks are delivered: how often the outbox is polled, the request timeout, the retry policy."""

    poll_interval: float = 1.0
    timeout: float = 10.0
    max_attempts: int = 8
    retry_interval: float = 1.0
    max_retry_interval: float = 300.0
    batch_size: int = 100


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """Watching libraries (DESIGN §12): the default of a new library, when changes are scanned, the fallbacks."""

    enabled: bool = True
    default: bool = True
    settle: float = 5.0
    max_delay: float = 60.0
    poll_interval: float = 600.0
    rescan_interval: float = 6 * 3600.0
    max_watches: int = 0
    max_pending: int = 512
    rearm_interval: float = 60.0
    rearm_max_interval: float = 3600.0


@dataclass(frozen=True, slots=True)
class Config:
    """Every setting of scanguard, by section."""

    safeguards: SafeguardConfig = field(default_factory=SafeguardConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    log: LogConfig = field(default_factory=LogConfig)
    webhook_delivery: WebhookDeliveryConfig = field(default_factory=WebhookDeliveryConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    webhooks: tuple[WebhookConfig, ...] = ()

    def replace(self, **sections: Any) -> Self:
        """A copy with some sections' fields replaced: `cfg.replace(scan={"batch_size": 10})`.

        `webhooks=[...]` replaces the whole list (entries as dicts or WebhookConfig), validated.
        """
        changes: dict[str, Any] = {}
        for name, values in sections.items():
            if name == "webhooks":
                changes[name] = webhooks_from(values, "webhooks")
                continue
            current = getattr(self, name)
            changes[name] = _build(type(current), name, {**_as_dict(current), **values})
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The effective settings, with the admin token masked."""
        out: dict[str, Any] = {
            f.name: _as_dict(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "webhooks"
        }
        if out["http"]["admin_token"]:
            out["http"]["admin_token"] = "***"  # noqa: S105 - a mask, not a secret
        out["webhooks"] = [{**_as_dict(hook), "secret": "***"} for hook in self.webhooks]
        return out


_SECTIONS: dict[str, type[Any]] = {
    "safeguards": SafeguardConfig,
    "database": DatabaseConfig,
    "http": HttpConfig,
    "scan": ScanConfig,
    "log": LogConfig,
    "webhook_delivery": WebhookDeliveryConfig,
    "watch": WatchConfig,
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
    if isinstance(obj, WebhookDeliveryConfig):
        for name in ("poll_interval", "timeout", "retry_interval"):
            if getattr(obj, name) <= 0:
                raise ConfigError(f"webhook_delivery.{name} must be > 0, got {getattr(obj, name):g}")
        if obj.max_attempts < 1 or obj.batch_size < 1:
            raise ConfigError("webhook_delivery.max_attempts and webhook_delivery.batch_size must be >= 1")
    if isinstance(obj, WatchConfig):
        for name in ("settle", "poll_interval", "rearm_interval"):
            if getattr(obj, name) <= 0:
                raise ConfigError(f"watch.{name} must be > 0, got {getattr(obj, name):g}")
        if obj.max_pending < 1:
            raise ConfigError(f"watch.max_pending must be >= 1, got {obj.max_pending}")
    if isinstance(obj, LogConfig):
        if obj.format not in {"auto", "json", "console"}:
            raise ConfigError(f"log.format must be auto, json or console, got {obj.format!r}")
        if obj.level.lower() not in {"debug", "info", "warning", "error"}:
            raise ConfigError(f"log.level must be debug, info, warning or error, got {obj.level!r}")


_WEBHOOK_KEYS = frozenset(f.name for f in dataclasses.fields(WebhookConfig))
WEBHOOKS_ENV = "SCANGUARD_WEBHOOKS"


def _webhook(key: str, entry: Any) -> WebhookConfig:
    """One webhook entry (a table, a JSON object or a WebhookConfig), checked field by field."""
    if isinstance(entry, WebhookConfig):
        entry = {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{key} must be a table with url, secret and kinds, got {entry!r}")
    unknown = sorted(set(entry) - _WEBHOOK_KEYS)
    if unknown:
        raise ConfigError(f"unknown setting {key}.{unknown[0]}")
    url, secret, name = entry.get("url"), entry.get("secret"), entry.get("name", "")
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s?#]+", url, re.IGNORECASE):
        raise ConfigError(f"{key}.url must be an http:// or https:// URL, got {url!r}")
    if not isinstance(secret, str) or not secret.strip():
        raise ConfigError(f"{key}.secret must be a non-empty string (it signs every delivery)")
    kinds = entry.get("kinds")
    if isinstance(kinds, str):
        kinds = [kinds]
    if (
        not isinstance(kinds, list | tuple)
        or not kinds
        or not all(isinstance(k, str) and k.strip() for k in kinds)
    ):
        raise ConfigError(
            f"{key}.kinds must be a non-empty list of event kind prefixes (e.g. ['job.', 'alert.']), got {kinds!r}"
        )
    if not isinstance(name, str):
        raise ConfigError(f"{key}.name must be a string, got {name!r}")
    return WebhookConfig(url=url, secret=secret, kinds=tuple(k.strip() for k in kinds), name=name.strip())


def webhooks_from(entries: Any, key: str = "webhooks") -> tuple[WebhookConfig, ...]:
    """Validate a list of webhook entries; each error names its key (`webhooks[1].secret ...`)."""
    if entries is None:
        return ()
    if not isinstance(entries, list | tuple):
        raise ConfigError(f"{key} must be a list of webhooks, got {entries!r}")
    hooks = tuple(_webhook(f"{key}[{i}]", entry) for i, entry in enumerate(entries))
    seen: set[str] = set()
    for i, hook in enumerate(hooks):
        if hook.key in seen:
            raise ConfigError(f"{key}[{i}] repeats the webhook {hook.key!r}: give each a distinct name")
        seen.add(hook.key)
    return hooks


def _env_webhooks(environ: Mapping[str, str]) -> tuple[WebhookConfig, ...] | None:
    raw = environ.get(WEBHOOKS_ENV)
    if raw is None:
        return None
    try:
        entries = json.loads(raw) if raw.strip() else []
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{WEBHOOKS_ENV} must be a JSON list of webhooks: {exc}") from exc
    return webhooks_from(entries, WEBHOOKS_ENV)


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
    webhooks: Any = None,
    **sections: Mapping[str, Any],
) -> Config:
    """Read TOML (if given), then SCANGUARD_* variables, then keyword sections; validate once.

    `load_config("config.toml", scan={"batch_size": 100})`. Webhooks come from `[[webhooks]]`, replaced
    as a whole by SCANGUARD_WEBHOOKS (a JSON list) and then by `webhooks=[...]`.
    """
    data: dict[str, dict[str, Any]] = {}
    hooks: tuple[WebhookConfig, ...] = ()
    if path is not None:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        hooks = webhooks_from(raw.pop("webhooks", None))
        for section, values in raw.items():
            if section not in _SECTIONS or not isinstance(values, dict):
                raise ConfigError(f"unknown config section [{section}] in {path}")
            data[section] = dict(values)
    env = os.environ if environ is None else environ
    for section, values in _env_overrides(env).items():
        data.setdefault(section, {}).update(values)
    env_hooks = _env_webhooks(env)
    if env_hooks is not None:
        hooks = env_hooks
    for section, values in sections.items():
        if section not in _SECTIONS:
            raise ConfigError(f"unknown config section {section}")
        data.setdefault(section, {}).update(values)
    if webhooks is not None:
        hooks = webhooks_from(webhooks)
    built = {name: _build(cls, name, data.get(name, {})) for name, cls in _SECTIONS.items()}
    return Config(**built, webhooks=hooks)
