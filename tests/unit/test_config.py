"""Configuration: TOML, SCANGUARD_* variables, keyword sections, and one validation naming the key."""

from __future__ import annotations

from pathlib import Path

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
