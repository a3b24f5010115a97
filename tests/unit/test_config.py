"""Configuration: TOML, SCANGUARD_* variables, keyword sections, and one validation naming the key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from scanguard import ConfigError, load_config

pytestmark = pytest.mark.timeout(10)


def test_defaults_keep_the_seed_safeguard_values() -> None:
    sg = load_config(environ={}).safeguards
    assert (sg.health_check_interval, sg.state_validation_interval, sg.cleanup_interval) == (30, 60, 300)
    assert (sg.operation_timeout, sg.shutdown_timeout, sg.max_retries, sg.retry_interval) == (30, 60, 3, 5)
    assert (sg.orphaned_job_threshold, sg.old_completed_job_retention) == (300, 30 * 86400)
    assert sg.emergency_cleanup_enabled is True
    assert sg.force_kill_timeout == 10


def test_toml_file_then_env_then_keywords_each_override_the_last(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[scan]\nbatch_size = 10\nbatch_seconds = "500ms"\n'
        '[safeguards]\ncleanup_interval = "5m"\nold_completed_job_retention = "30d"\n'
        '[database]\nurl = "sqlite:///from-file.db"\n'
    )
    cfg = load_config(path, environ={"SCANGUARD_SCAN_BATCH_SIZE": "20"}, database={"url": "sqlite:///kw.db"})
    assert cfg.scan.batch_size == 20
    assert cfg.scan.batch_seconds == 0.5
    assert cfg.safeguards.cleanup_interval == 300
    assert cfg.safeguards.old_completed_job_retention == 30 * 86400
    assert cfg.database.url == "sqlite:///kw.db"


def test_every_setting_has_an_environment_variable() -> None:
    cfg = load_config(
        environ={
            "SCANGUARD_SCAN_BATCH_SIZE": "7",
            "SCANGUARD_SCAN_FOLLOW_SYMLINKS": "yes",
            "SCANGUARD_SCAN_AUDIO_EXTENSIONS": "flac, dsf",
            "SCANGUARD_SAFEGUARDS_RETRY_INTERVAL": "2s",
            "SCANGUARD_HTTP_PORT": "9000",
            "SCANGUARD_ADMIN_TOKEN": "secret",
        }
    )
    assert cfg.scan.batch_size == 7
    assert cfg.scan.follow_symlinks is True
    assert cfg.scan.audio_extensions == ("flac", "dsf")
    assert cfg.safeguards.retry_interval == 2.0
    assert cfg.http.port == 9000
    assert cfg.http.admin_token == "secret"
    assert cfg.as_dict()["http"]["admin_token"] == "***"


def test_the_developer_environment_does_not_leak_into_an_explicit_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCANGUARD_SCAN_BATCH_SIZE", "3")
    assert load_config(environ={}).scan.batch_size == 1000
    assert load_config().scan.batch_size == 3


@pytest.mark.parametrize(
    ("kwargs", "environ", "key"),
    [
        ({}, {"SCANGUARD_SCAN_BATCH_SIZE": "lots"}, "scan.batch_size"),
        ({}, {"SCANGUARD_SCAN_BATCH_SIZE": "0"}, "scan.batch_size"),
        ({"safeguards": {"retry_interval": -1}}, {}, "safeguards.retry_interval"),
        ({"safeguards": {"retry_interval": 0}}, {}, "safeguards.retry_interval"),
        ({"safeguards": {"cleanup_interval": "soon"}}, {}, "safeguards.cleanup_interval"),
        ({"safeguards": {"emergency_cleanup_enabled": "maybe"}}, {}, "safeguards.emergency_cleanup_enabled"),
        ({"scan": {"empty_root_ratio": 1.5}}, {}, "scan.empty_root_ratio"),
        ({"scan": {"nonsense": 1}}, {}, "scan.nonsense"),
        ({"http": {"port": 70000}}, {}, "http.port"),
        ({"database": {"url": "mysql://x"}}, {}, "database.url"),
        ({"log": {"format": "xml"}}, {}, "log.format"),
        ({"log": {"level": "loud"}}, {}, "log.level"),
    ],
)
def test_bad_values_raise_config_error_naming_the_key(
    kwargs: dict, environ: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(environ=environ, **kwargs)
    assert key in str(raised.value)


def test_bad_toml_and_unknown_sections_and_missing_files_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[scan\nbatch_size = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, environ={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[scanner]\nbatch_size = 1\n")
    with pytest.raises(ConfigError, match=r"\[scanner\]"):
        load_config(unknown, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml", environ={})


def test_the_shipped_config_toml_loads_and_equals_the_defaults() -> None:
    """config.toml documents every setting with its default: loading it changes nothing but the URL."""
    shipped = Path(__file__).resolve().parents[2] / "config.toml"
    if not shipped.exists():
        pytest.fail("config.toml is missing from the repository root")
    cfg = load_config(shipped, environ={})
    defaults = load_config(environ={}, database={"url": cfg.database.url})
    assert cfg.replace(http={"admin_token": ""}) == defaults


# Every setting: a value it takes as TOML, the same as an environment string, and values it refuses
# (wrong type, out of range, a unit it does not have). A setting added without a row fails the test below.
DURATION = ("90s", "90", 90.0, ("soon", True, "-1", "5x"))
INTERVAL = ("2m", "120", 120.0, ("0", "0s", "soon", False))
COUNT = ("3", "3", 3, ("-1", "lots", "1.5", True))
AT_LEAST_ONE = ("3", "3", 3, ("0", "lots", "1.5", True))
FLAG = ("on", "yes", True, ("maybe", "2"))
NAMES = ("a, b", "a, b", ("a", "b"), ())
SETTINGS: dict[str, tuple[Any, str, Any, tuple[Any, ...]]] = {
    "safeguards.health_check_interval": DURATION,
    "safeguards.state_validation_interval": DURATION,
    "safeguards.cleanup_interval": DURATION,
    "safeguards.operation_timeout": INTERVAL,
    "safeguards.shutdown_timeout": DURATION,
    "safeguards.max_retries": COUNT,
    "safeguards.retry_interval": INTERVAL,
    "safeguards.retry_window": DURATION,
    "safeguards.orphaned_job_threshold": DURATION,
    "safeguards.stall_threshold": DURATION,
    "safeguards.watchdog_interval": INTERVAL,
    "safeguards.old_completed_job_retention": ("30d", "30d", 30 * 86400.0, ("a month", "-1")),
    "safeguards.event_retention": DURATION,
    "safeguards.emergency_cleanup_enabled": FLAG,
    "safeguards.force_kill_timeout": DURATION,
    "safeguards.lease_ttl": INTERVAL,
    "safeguards.auto_resume_orphans": FLAG,
    "safeguards.actor_ping_timeout": INTERVAL,
    "safeguards.cleanup_batch_size": AT_LEAST_ONE,
    "database.url": ("sqlite:///x.db", "sqlite:///x.db", "sqlite:///x.db", ("mysql://x", 5)),
    "database.busy_timeout": ("500ms", "500ms", 0.5, ("-1s", "quick")),
    "database.busy_retries": COUNT,
    "database.pool_size": AT_LEAST_ONE,
    "database.echo": FLAG,
    "http.host": ("0.0.0.0", "0.0.0.0", "0.0.0.0", (5, ["a"])),
    "http.port": ("9000", "9000", 9000, ("70000", "-1", "http", 80.5)),
    "http.admin_token": ("s3cret", "s3cret", "s3cret", (123,)),
    "http.allowed_roots": NAMES,
    "http.max_body_bytes": AT_LEAST_ONE,
    "scan.batch_size": AT_LEAST_ONE,
    "scan.batch_seconds": ("500ms", "500ms", 0.5, ("0", "slow")),
    "scan.follow_symlinks": FLAG,
    "scan.walkers": AT_LEAST_ONE,
    "scan.walk_nice": ("5", "5", 5, ("20", "-1", "low", 2.5)),
    "scan.quick_hash_bytes": COUNT,
    "scan.empty_root_ratio": ("0.25", "0.25", 0.25, ("500ms", "5m", "1.5", "-0.1", True)),
    "scan.empty_root_min_files": COUNT,
    "scan.audio_extensions": ("flac, dsf", "flac, dsf", ("flac", "dsf"), (5,)),
    "scan.video_extensions": NAMES,
    "scan.image_extensions": NAMES,
    "scan.processors": ("audio_tags", "audio_tags", ("audio_tags",), ("nonsense", "audio_tags,audio_tags")),
    "scan.workers": COUNT,
    "scan.file_timeout": INTERVAL,
    "scan.worker_max_files": AT_LEAST_ONE,
    "scan.worker_memory_limit": COUNT,
    "log.level": ("debug", "debug", "debug", ("loud", 3)),
    "log.format": ("json", "json", "json", ("xml",)),
    "watch.enabled": FLAG,
    "watch.default": FLAG,
    "watch.settle": ("500ms", "500ms", 0.5, ("0", "soon", "-1s")),
    "watch.max_delay": DURATION,
    "watch.poll_interval": INTERVAL,
    "watch.rescan_interval": ("6h", "6h", 6 * 3600.0, ("daily", "-6h")),
    "watch.max_watches": COUNT,
    "watch.max_pending": AT_LEAST_ONE,
    "watch.rearm_interval": INTERVAL,
    "watch.rearm_max_interval": DURATION,
    "webhook_delivery.poll_interval": INTERVAL,
    "webhook_delivery.timeout": INTERVAL,
    "webhook_delivery.max_attempts": AT_LEAST_ONE,
    "webhook_delivery.retry_interval": INTERVAL,
    "webhook_delivery.max_retry_interval": DURATION,
    "webhook_delivery.batch_size": AT_LEAST_ONE,
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value)


def test_the_table_names_every_setting_of_every_section() -> None:
    """A new setting cannot be added without saying what it takes and what it refuses."""
    keys = {
        f"{section}.{name}"
        for section, values in load_config(environ={}).as_dict().items()
        if section != "webhooks"
        for name in values
    }
    assert keys == set(SETTINGS)


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_each_setting_is_read_by_its_type_in_toml_and_in_the_environment_alike(
    key: str, tmp_path: Path
) -> None:
    """TOML and SCANGUARD_* give the same value; every bad value (type, range, unit) names the key."""
    section, name = key.split(".")
    toml_value, env_value, expected, bad_values = SETTINGS[key]
    path = tmp_path / "config.toml"
    path.write_text(f"[{section}]\n{name} = {_toml_value(toml_value)}\n")
    from_toml = getattr(getattr(load_config(path, environ={}), section), name)
    variable = f"SCANGUARD_{section}_{name}".upper()
    from_env = getattr(getattr(load_config(environ={variable: env_value}), section), name)
    assert from_toml == from_env == expected
    for bad in bad_values:
        path.write_text(f"[{section}]\n{name} = {_toml_value(bad)}\n")
        with pytest.raises(ConfigError, match=re.escape(key)):
            load_config(path, environ={})
        if isinstance(bad, str):
            with pytest.raises(ConfigError, match=re.escape(key)):
                load_config(environ={variable: bad})


def test_a_ratio_is_never_read_as_a_duration_and_a_duration_keeps_its_units() -> None:
    """The two traps of reading by annotation text: '500ms' as a ratio of 0.5, and '5m' refused as 300."""
    with pytest.raises(ConfigError, match=r"scan\.empty_root_ratio"):
        load_config(environ={}, scan={"empty_root_ratio": "500ms"})
    assert load_config(environ={}, safeguards={"stall_threshold": "5m"}).safeguards.stall_threshold == 300
