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
from typing import Any, Self, get_type_hints

from scanguard.errors import ConfigError
from scanguard.processor_names import check_names
from scanguard.setting_types import (
    AtLeastOne,
    Count,
    DatabaseUrl,
    Duration,
    Flag,
    Interval,
    LogFormat,
    LogLevel,
    Names,
    Niceness,
    Port,
    Ratio,
    Rule,
    Text,
    rule_of,
)

AUDIO_EXTENSIONS = ("flac", "mp3", "m4a", "aac", "ogg", "opus", "wav", "wma", "aiff", "alac")
VIDEO_EXTENSIONS = ("mkv", "mp4", "m4v", "avi", "mov", "wmv", "webm", "ts", "mpg", "mpeg")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "gif", "webp", "heic", "tif", "tiff", "bmp")


def default_data_dir() -> Path:
    """Where scanguard keeps its database and generated token when not told otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "scanguard"


def _default_database_url() -> str:
    return f"sqlite:///{default_data_dir() / 'scanguard.db'}"


@dataclass(frozen=True, slots=True)
class SafeguardConfig:
    """The seed's SafeguardConfig: intervals, timeouts and retry policy, all in seconds."""

    health_check_interval: Duration = 30.0  # the three periodic checks: 0 turns one off
    state_validation_interval: Duration = 60.0
    cleanup_interval: Duration = 300.0
    operation_timeout: Interval = 30.0
    shutdown_timeout: Duration = 60.0
    max_retries: Count = 3
    retry_interval: Interval = 5.0
    retry_window: Duration = 600.0
    orphaned_job_threshold: Duration = 300.0
    stall_threshold: Duration = 120.0
    watchdog_interval: Interval = 15.0
    old_completed_job_retention: Duration = 30 * 86400.0
    event_retention: Duration = 30 * 86400.0
    emergency_cleanup_enabled: Flag = True
    force_kill_timeout: Duration = 10.0
    lease_ttl: Interval = 60.0
    auto_resume_orphans: Flag = False
    actor_ping_timeout: Interval = 5.0
    cleanup_batch_size: AtLeastOne = 500


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """Where the data lives: a SQLAlchemy URL (SQLite by default, PostgreSQL for several instances)."""

    url: DatabaseUrl = field(default_factory=_default_database_url)
    busy_timeout: Duration = 5.0
    busy_retries: Count = 8
    pool_size: AtLeastOne = 5
    echo: Flag = False


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The admin HTTP surface: bind address, bearer token, limits."""

    host: Text = "127.0.0.1"
    port: Port = 8080
    admin_token: Text = ""
    allowed_roots: Names = ()
    max_body_bytes: AtLeastOne = 64 * 1024


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """How a library is walked and written."""

    batch_size: AtLeastOne = 1000
    batch_seconds: Interval = 1.0
    follow_symlinks: Flag = False
    walkers: AtLeastOne = 8  # directories listed (and their files stat'ed) at once; 1: the serial walk
    walk_nice: Niceness = 10  # the walk process's priority below the service's: the API answers first
    quick_hash_bytes: Count = 0
    empty_root_ratio: Ratio = 0.5
    empty_root_min_files: Count = 20
    audio_extensions: Names = AUDIO_EXTENSIONS
    video_extensions: Names = VIDEO_EXTENSIONS
    image_extensions: Names = IMAGE_EXTENSIONS
    processors: Names = ()
    workers: Count = 0  # 0: one per CPU
    file_timeout: Interval = 30.0
    worker_max_files: AtLeastOne = 5000
    worker_memory_limit: Count = 2048  # MiB; 0: no cap

    @property
    def worker_count(self) -> int:
        """How many worker processes read files: `workers`, or one per CPU when it is 0."""
        return self.workers or os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Structured logging: level, and json/console/auto (JSON when stderr is not a terminal)."""

    level: LogLevel = "info"
    format: LogFormat = "auto"


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

    poll_interval: Interval = 1.0
    timeout: Interval = 10.0
    max_attempts: AtLeastOne = 8
    retry_interval: Interval = 1.0
    max_retry_interval: Duration = 300.0
    batch_size: AtLeastOne = 100


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """Watching libraries (DESIGN §12): the default of a new library, when changes are scanned, the fallbacks."""

    enabled: Flag = True
    default: Flag = True
    settle: Interval = 5.0
    max_delay: Duration = 60.0
    poll_interval: Interval = 600.0
    rescan_interval: Duration = 6 * 3600.0  # 0: no backstop rescan
    max_watches: Count = 0  # 0: only the kernel's limit
    max_pending: AtLeastOne = 512
    rearm_interval: Interval = 60.0
    rearm_max_interval: Duration = 3600.0


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


def _section_rules(cls: type[Any]) -> dict[str, Rule]:
    """Each setting of a section and the Rule its type carries."""
    hints = get_type_hints(cls, include_extras=True)
    return {f.name: rule_of(hints[f.name]) for f in dataclasses.fields(cls)}


_RULES: dict[type[Any], dict[str, Rule]] = {cls: _section_rules(cls) for cls in _SECTIONS.values()}
"""Read from the annotations once, at import: a section whose field has no setting type fails here."""


def _build(cls: type[Any], section: str, values: Mapping[str, Any]) -> Any:
    """A section from raw values (TOML, environment strings, keywords), each read by its field's type."""
    rules = _RULES[cls]
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name not in rules:
            raise ConfigError(f"unknown setting {section}.{name}")
        kwargs[name] = rules[name].read(f"{section}.{name}", value)
    obj = cls(**kwargs)
    if isinstance(obj, ScanConfig):
        check_names(obj.processors)
    return obj


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
