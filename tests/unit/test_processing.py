"""Issues 7 and 18: per-file settings are checked once, with the key named; the commit window hands out only
ready prefixes; the pool's results travel a chunk at a time, their meta as the JSON text the worker encoded."""

from __future__ import annotations

import dis
import inspect
from concurrent.futures import Future
from pathlib import Path

import mutagen
import pykka
import pytest

import scanguard
from scanguard.processing import audio_formats
from scanguard.processing.chunk import Chunk
from scanguard.processing.context import FileContext, FileOutcome
from scanguard.processing.file_work import ScanWork
from scanguard.processing.window import Entry, Segment, Window
from scanguard.records import FileRow, JsonText
from scanguard.store import jsontext
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


def _chunk(*paths: str) -> Chunk:
    return Chunk([FileContext(1, 1, "/lib", p, f"/lib/{p}", 1, 1.0, "audio") for p in paths])


def _pooled(path: str, chunk: Chunk, index: int, *work: Future[FileOutcome]) -> Entry:
    entry = _entry(path, *work)
    entry.chunk, entry.index = chunk, index
    return entry


def test_the_window_waits_for_a_chunk_of_files_as_one_and_hands_them_out_once_it_is_filled() -> None:
    """Files share their chunk's one future: none is ready before the whole chunk's results are in."""
    chunk = _chunk("a", "b", "c")
    window = Window()
    window.add(Segment([_pooled(p, chunk, i) for i, p in enumerate("abc")], vanished=[]))

    assert window.take() is None
    assert window.head_blocker() is chunk.future
    chunk.fill(1, [('{"t": 2}', None, None), ('{"t": 3}', None, None)])
    assert window.take() is None, "the chunk's first file has no result yet"
    chunk.fill(0, [(None, "audio_tags: broken", "error")])

    assert chunk.future.done()
    assert window.head_blocker() is None
    ready = window.take()
    assert ready is not None
    assert [e.item.path for e in ready.entries] == ["a", "b", "c"]


def test_a_row_takes_the_meta_text_its_worker_encoded_as_it_is_and_merges_it_with_in_process_results() -> (
    None
):
    """The worker's JSON text goes to the store untouched (no decode, no second encode); only a file that
    also has the in-process processor's result is merged, the pool's keys last, as before."""
    chunk = _chunk("a", "b")
    chunk.fill(0, [('{"audio_tags": {"title": "A"}}', None, None), (None, "audio_tags: bad", "error")])
    failures: list[tuple[str, str, str]] = []

    alone = ScanWork.row(_pooled("a", chunk, 0), failures)
    assert isinstance(alone.meta, JsonText)
    assert alone.meta == '{"audio_tags": {"title": "A"}}'
    assert jsontext.dumps(alone.meta) == alone.meta, "the store's serializer writes it as it is"
    assert jsontext.dumps({"x": 1}) == '{"x": 1}', "anything else is encoded as before"

    both = ScanWork.row(_pooled("a", chunk, 0, _done()), failures)
    assert both.meta == {"x": 1, "audio_tags": {"title": "A"}}

    failed = ScanWork.row(_pooled("b", chunk, 1), failures)
    assert (failed.meta, failed.error) == (None, "audio_tags: bad")
    assert failures == [("b", "error", "audio_tags: bad")]


def test_a_chunk_that_failed_raises_its_error_for_every_file_and_keeps_no_late_result() -> None:
    chunk = _chunk("a", "b")
    chunk.fill(0, [('{"x": 1}', None, None)])
    chunk.fail(scanguard.WorkersUnavailable("the worker pool broke down"))
    chunk.fill(1, [('{"x": 2}', None, None)])  # a task's late news

    assert chunk.finished
    for index in (0, 1):
        with pytest.raises(scanguard.WorkersUnavailable):
            chunk.result(index)


def test_audio_tags_weighs_exactly_the_formats_mutagen_file_weighs() -> None:
    """audio_tags hands mutagen.File its own list (so that mutagen does not import 24 modules per file):
    the list must stay mutagen's, the easy variants included — this fails when a mutagen upgrade adds one."""
    function = inspect.unwrap(mutagen.File)
    names = {i.argval for i in dis.get_instructions(function) if i.opname == "IMPORT_FROM"}
    plain = {"ID3FileType", "MP3", "TrueAudio", "MP4"}  # what easy=True swaps for the Easy* variants
    assert {kind.__name__ for kind in audio_formats.kinds()} == names - plain


@pytest.mark.parametrize(
    ("extension", "header", "kind"),
    [
        ("flac", b"fLaC\x00\x00\x00\x22", "FLAC"),
        ("mp3", b"ID3\x04\x00", "EasyMP3"),
        ("mp3", b"\xff\xfb\x90\x64", "EasyMP3"),
        ("ogg", b"OggS\x00\x02" + b"\x00" * 22 + b"\x01vorbis", "OggVorbis"),
        (
            "flac",
            b"ID3\x04\x00fLaC",
            None,
        ),  # FLAC would score 3, EasyMP3 2: close enough to let mutagen weigh
        ("mp3", b"\xff\xe3\x90\x64", None),  # a sync EasyMP3.score does not count
        ("ogg", b"OggS\x00\x02" + b"\x00" * 22 + b"\x01vorbis FLAC fLaC", None),  # OggFLAC could score 2
        ("ogg", b"OggS\x00\x02" + b"\x00" * 22 + b"\x01vorbis ftyp", None),  # so could EasyMP4
        ("ogg", b"OggS\x00\x02" + b"\x00" * 22 + b"OpusHead", None),
        ("m4a", b"\x00\x00\x00\x20ftypM4A ", None),  # no shortcut: mutagen weighs it
    ],
)
def test_audio_tags_opens_a_file_as_its_format_only_where_mutagen_file_could_pick_no_other(
    extension: str, header: bytes, kind: str | None
) -> None:
    found = audio_formats.signed(extension, header)
    assert (found.__name__ if found is not None else None) == kind
