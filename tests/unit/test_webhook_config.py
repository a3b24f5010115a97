"""Issue 10: `[[webhooks]]` from TOML, SCANGUARD_WEBHOOKS and the Runtime, validated before anything starts."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pykka
import pytest

import scanguard
from scanguard import ConfigError, load_config

pytestmark = pytest.mark.timeout(20)
HOOK = {"url": "https://hooks.example.com/in", "secret": "s3cret", "kinds": ["job.", "alert."]}


def test_webhooks_are_read_from_toml_tables_and_the_environment_replaces_them(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[[webhooks]]\nurl = "http://127.0.0.1:9000/a"\nsecret = "one"\nkinds = ["job."]\n'
        '[[webhooks]]\nname = "ops"\nurl = "https://ops.example/b"\nsecret = "two"\nkinds = ["alert."]\n'
        "[webhook_delivery]\nmax_attempts = 3\n"
    )
    cfg = load_config(path, environ={})
    assert [(h.key, h.kinds) for h in cfg.webhooks] == [
        ("http://127.0.0.1:9000/a", ("job.",)),
        ("ops", ("alert.",)),
    ]
    assert cfg.webhook_delivery.max_attempts == 3
    replaced = load_config(path, environ={"SCANGUARD_WEBHOOKS": json.dumps([HOOK])})
    assert [h.url for h in replaced.webhooks] == [HOOK["url"]]
    assert load_config(path, environ={"SCANGUARD_WEBHOOKS": "[]"}).webhooks == ()
    assert load_config(path, environ={}, webhooks=[]).webhooks == ()


def test_the_effective_config_never_shows_a_webhook_secret() -> None:
    cfg = load_config(environ={"SCANGUARD_WEBHOOKS": json.dumps([HOOK])})
    assert cfg.as_dict()["webhooks"][0]["secret"] == "***"
    assert "s3cret" not in json.dumps(cfg.as_dict(), default=str)
    assert "s3cret" not in repr(cfg)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"url": HOOK["url"], "kinds": ["job."]}, "webhooks[0].secret must be a non-empty string"),
        ({**HOOK, "secret": "  "}, "webhooks[0].secret must be a non-empty string"),
        ({**HOOK, "url": "ftp://example.com/x"}, "webhooks[0].url must be an http:// or https:// URL"),
        ({**HOOK, "url": "example.com/x"}, "webhooks[0].url must be an http:// or https:// URL"),
        ({**HOOK, "kinds": []}, "webhooks[0].kinds must be a non-empty list"),
        ({**HOOK, "kinds": [""]}, "webhooks[0].kinds must be a non-empty list"),
        ({"url": HOOK["url"], "secret": "s"}, "webhooks[0].kinds must be a non-empty list"),
        ({**HOOK, "colour": "red"}, "unknown setting webhooks[0].colour"),
    ],
)
def test_a_bad_webhook_is_a_config_error_naming_its_key(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(environ={}, webhooks=[entry])
    with pytest.raises(ConfigError, match=r"SCANGUARD_WEBHOOKS\[0\]"):
        load_config(environ={"SCANGUARD_WEBHOOKS": json.dumps([entry])})


def test_two_webhooks_with_one_key_and_malformed_json_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"webhooks\[1\] repeats"):
        load_config(environ={}, webhooks=[HOOK, HOOK])
    with pytest.raises(ConfigError, match="SCANGUARD_WEBHOOKS must be a JSON list"):
        load_config(environ={"SCANGUARD_WEBHOOKS": "{not json"})
    with pytest.raises(ConfigError, match=r"webhook_delivery\.timeout"):
        load_config(environ={"SCANGUARD_WEBHOOK_DELIVERY_TIMEOUT": "0"})


def test_runtime_start_with_a_bad_webhook_raises_and_starts_nothing(tmp_path: Path) -> None:
    """No actor, no thread, no database file: the error comes before anything starts."""
    database = tmp_path / "never.db"
    cfg = load_config(environ={}, database={"url": f"sqlite:///{database}"})
    threads = threading.active_count()
    with pytest.raises(ConfigError, match=r"webhooks\[0\].secret"):
        scanguard.Runtime.start(cfg, webhooks=[{"url": HOOK["url"], "secret": "", "kinds": ["job."]}])
    assert pykka.ActorRegistry.get_all() == []
    assert threading.active_count() == threads
    assert not database.exists()
