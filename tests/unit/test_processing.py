"""Issue 7: per-file settings are checked once, with the key named; the commit window hands out only ready prefixes."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import pykka
import pytest

import scanguard
from scanguard.processing.context import FileOutcome
from scanguard.processing.window import Entry, Segment, Window
from scanguard.records import FileRow
from scanguard.walk import Found, Skipped

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("scan", "says"),
    [
        ({"processors": ["tags"]}, "scan.processors: unknown processor 'tags'"),
        ({"processors": ["audio_tags", "audio_tags"]}, "scan.processors: 'audio_tags' is named twice"),
        ({"processors": ["not a path"]}, "scan.processors: unknown processor 'not a path'"),
        ({"workers": -1}, "scan.workers must be >= 0"),
        ({"file_timeout": 0}, "scan.file_timeout must be > 0"),
        ({"file_timeout": -1}, "scan.file_timeout must be > 0"),
        ({"worker_max_files": 0}, "scan.worker_max_files must be >= 1"),
        ({"worker_memory_limit": -5}, "scan.worker_memory_limit must be >= 0"),
    ],
)
def test_a_bad_per_file_setting_is_refused_with_its_key(scan: dict[str, object], says: str) -> None:
    with pytest.raises(scanguard.ConfigError) as err:
        scanguard.load_config(environ={}, scan=scan)
    assert says in str(err.value)


def test_processors_come_from_the_environment_as_a_comma_separated_list() -> None:
    cfg = scanguard.load_config(environ={"SCANGUARD_SCAN_PROCESSORS": "audio_tags, image_info"})
    assert cfg.scan.processors == ("audio_tags", "image_info")
    assert cfg.scan.worker_count >= 1


@pytest.mark.parametrize(
    ("processors", "says"),
    [
        (["no_such_module_here:read"], "'no_such_module_here:read' does not import: ModuleNotFoundError"),
        (["scanguard.processing.builtins:no_such_function"], "does not import: AttributeError"),
        (["scanguard.processing.builtins:EXIF_IFD"], "is not callable"),
    ],
)
def test_runtime_start_with_a_processor_that_does_not_import_starts_nothing(
    tmp_path: Path, processors: list[str], says: str
) -> None:
    db = tmp_path / "x.db"
    cfg = scanguard.load_config(environ={}, database={"url": f"sqlite:///{db}"})
    with pytest.raises(scanguard.ConfigError) as err:
        scanguard.Runtime.start(cfg, processors=processors)
    assert "scan.processors" in str(err.value)
    assert says in str(err.value)
    assert pykka.ActorRegistry.get_all() == []
    assert not db.exists()


def test_video_probe_without_ffprobe_on_path_is_a_start_up_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    cfg = scanguard.load_config(environ={}, database={"url": f"sqlite:///{tmp_path / 'x.db'}"})
    with pytest.raises(scanguard.ConfigError, match="video_probe needs ffprobe"):
        scanguard.Runtime.start(cfg, processors=["video_probe"])
    assert pykka.ActorRegistry.get_all() == []


def _entry(path: str, *work: Future[FileOutcome]) -> Entry:
    return Entry(Found(path, 1, 1.0, "audio"), FileRow(path, 1, 1.0, "audio"), work=work)


def _done() -> Future[FileOutcome]:
    fut: Future[FileOutcome] = Future()
    fut.set_result(FileOutcome({"x": 1}))
    return fut


def test_the_window_hands_out_only_a_prefix_whose_work_is_done_with_the_vanished_rows_before_it() -> None:
    slow: Future[FileOutcome] = Future()
    window = Window()
    window.add(
        Segment(
            [_entry("a", _done()), Entry(Skipped("b", "hidden")), _entry("c", slow), _entry("d", _done())],
            vanished=[("a0", 1), ("a5", 2), ("c5", 3)],
        )
    )
    window.add(Segment([_entry("e", _done())], vanished=[("z", 4)]))

    first = window.take()
    assert first is not None
    assert [e.item.path for e in first.entries] == ["a", "b"]
    assert (first.checkpoint, first.vanished_ids) == ("b", (1, 2))
    assert window.take() is None, "nothing past the unfinished file, although later work is done"
    assert window.pending == 3

    slow.set_result(FileOutcome(None, "boom", "error"))
    rest = window.take()
    assert rest is not None
    assert [e.item.path for e in rest.entries] == ["c", "d"]
    assert (rest.checkpoint, rest.vanished_ids) == ("d", (3,))
    last = window.take()
    assert last is not None
    assert (last.checkpoint, last.vanished_ids) == ("e", (4,))
    assert not window
    assert window.pending == 0
