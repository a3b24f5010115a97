"""Issue 7: per-file work in worker processes — real tags read, poison files quarantined, the scan goes on."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import scanguard
from scanguard import MediaFile
from scanguard.processing.builtins import AUDIO_TAG_NAMES as TAG_NAMES
from tests.support.hostproc import NAME as HOST
from tests.support.hostproc import POISON, add_poison, read_calls
from tests.support.media import DURATION_TOLERANCE, TaggedLibrary, build_tagged_library, missing_reason
from tests.support.waiting import QUIET_SAFEGUARDS

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(bool(missing_reason()), reason=missing_reason() or "tools present"),
]

FILE_TIMEOUT = 1.0
PROCESSORS = ("audio_tags", "image_info", "video_probe", HOST)
BAD = POISON


def _library(tmp_path: Path) -> TaggedLibrary:
    lib = build_tagged_library(tmp_path / "library")
    add_poison(lib.root, next(iter(lib.of_type("audio"))))
    return lib


def _config(make_config: Callable[..., scanguard.Config], **scan: Any) -> scanguard.Config:
    return make_config(
        safeguards=QUIET_SAFEGUARDS,
        scan={
            "processors": list(PROCESSORS),
            "workers": 2,
            "file_timeout": FILE_TIMEOUT,
            "worker_memory_limit": 1024,
            **scan,
        },
    )


def _files(rt: scanguard.Runtime, library_id: int) -> dict[str, MediaFile]:
    return {f.path: f for f in rt.list_files(library_id, limit=1000).items}


def assert_exact_readings(lib: TaggedLibrary, files: dict[str, MediaFile]) -> None:
    """Every good file carries exactly what its reader should find; the host processor's result beside it."""
    for rel, exp in lib.expected.items():
        got = files[rel]
        assert got.error is None, (rel, got.error)
        meta = got.meta or {}
        assert meta[HOST] == {"size": got.size}, rel
        if exp["media_type"] == "audio":
            tags = meta["audio_tags"]
            assert {TAG_NAMES[k]: v for k, v in exp["tags"].items()} == {
                name: tags.get(name) for name in TAG_NAMES.values()
            }, rel
            assert abs(tags["duration"] - exp["duration"]) <= DURATION_TOLERANCE, rel
            assert (tags["sample_rate"], tags["channels"], tags["codec"]) == (
                exp["sample_rate"],
                exp["channels"],
                exp["mime"],
            ), rel
        elif exp["media_type"] == "image":
            info = meta["image_info"]
            assert (info["width"], info["height"], info["format"]) == (
                exp["width"],
                exp["height"],
                exp["format"],
            ), rel
            assert info.get("orientation") == exp["orientation"], rel
            assert info.get("taken_at") == exp["taken_at"], rel
        else:
            probe = meta["video_probe"]
            assert probe["container"] == exp["container"]
            assert abs(probe["duration"] - exp["duration"]) <= 0.1
            assert (probe["width"], probe["height"]) == (exp["width"], exp["height"])
            assert (probe["video_codec"], probe["audio_codec"]) == ("h264", "aac")


def assert_poison_recorded(lib: TaggedLibrary, files: dict[str, MediaFile]) -> None:
    for rel, (_, says) in BAD.items():
        assert says in (files[rel].error or ""), (rel, files[rel].error)
    for rel in ("Bad/hang.flac", "Bad/exit.flac", "Bad/segv.flac"):
        assert files[rel].meta is None, f"a quarantined file keeps no partial result: {rel}"
    corrupt = files[lib.corrupt]
    assert (corrupt.error or "").startswith("audio_tags: "), corrupt.error
    assert "audio_tags" not in (corrupt.meta or {})


def test_a_tag_reading_scan_reads_every_good_file_exactly_and_quarantines_each_poison_file(
    db_url: str,
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """Hang, exit, segfault, raise, blow the memory cap, corrupt MP3: all recorded, the scan completes."""
    lib = _library(tmp_path)
    rt = runtime_factory(_config(make_config))
    library = rt.add_library(str(lib.root))

    job = rt.wait_for_job(rt.start_scan(library.id).id, ("completed", "failed", "paused"), timeout=60)

    assert job.status == "completed", job
    files = _files(rt, library.id)
    assert sorted(files) == sorted([*lib.paths, *BAD]), "every media file is indexed, each once"
    assert job.files_processed == len(files)
    assert job.errors == len(BAD) + 1
    assert_exact_readings(lib, files)
    assert_poison_recorded(lib, files)
    failed = rt.list_files(library.id, errors=True)
    assert sorted(f.path for f in failed.items) == sorted([*BAD, lib.corrupt])
    quarantined = {
        e.data["path"]: e.data["reason"] for e in rt.events(job_id=job.id, kind="file.quarantined", limit=100)
    }
    assert quarantined == {**{rel: reason for rel, (reason, _) in BAD.items()}, lib.corrupt: "error"}
    metric = rt.metrics.files_quarantined
    assert {r: metric.labels(r)._value.get() for r in ("timeout", "signal", "exit", "error")} == {
        "timeout": 1,
        "signal": 1,
        "exit": 1,
        "error": 3,
    }
    calls = Counter(read_calls(lib.root))
    assert set(calls) == set(files), "the host processor saw every media file"
    assert max(calls.values()) <= 2, f"no file is processed more than twice: {calls.most_common(3)}"
    for rel in ("Bad/hang.flac", "Bad/exit.flac", "Bad/segv.flac"):
        assert calls[rel] == 2, f"a crash or timeout is tried once more, on its own: {rel}"

    # the pool survived its crashed workers: a second library is read as well
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(lib.root / next(iter(lib.of_type("audio"))), other / "again.flac")
    second = rt.add_library(str(other))
    done = rt.wait_for_job(rt.start_scan(second.id).id, ("completed", "failed", "paused"), timeout=30)
    assert done.status == "completed"
    assert _files(rt, second.id)["again.flac"].meta is not None


def test_a_rescan_skips_quarantined_files_unless_asked_and_processes_changed_ones_anew(
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """Unchanged files (quarantined ones too) are not processed again; retry_failed and changes are."""
    lib = _library(tmp_path)
    rt = runtime_factory(_config(make_config))
    library = rt.add_library(str(lib.root))
    first = rt.wait_for_job(rt.start_scan(library.id).id, ("completed",), timeout=60)
    assert first.errors == len(BAD) + 1
    before = len(read_calls(lib.root))

    rescan = rt.wait_for_job(rt.start_scan(library.id).id, ("completed",), timeout=30)
    assert read_calls(lib.root)[before:] == [], "an unchanged rescan processes nothing, the hang included"
    assert (rescan.files_changed, rescan.errors) == (0, 0)
    assert len(rt.list_files(library.id, errors=True).items) == len(BAD) + 1, "the failures stay recorded"

    changed = next(iter(lib.of_type("image")))
    stamp = os.stat(lib.root / changed).st_mtime + 10
    os.utime(lib.root / changed, (stamp, stamp))
    before = len(read_calls(lib.root))
    third = rt.wait_for_job(rt.start_scan(library.id).id, ("completed",), timeout=30)
    assert read_calls(lib.root)[before:] == [changed], "a changed file is processed anew"
    assert third.files_changed == 1

    before = len(read_calls(lib.root))
    retry = rt.start_scan(library.id, retry_failed=True)
    assert retry.retry_failed
    again = rt.wait_for_job(retry.id, ("completed",), timeout=60)
    assert sorted(set(read_calls(lib.root)[before:])) == sorted([*BAD, lib.corrupt])
    assert again.errors == len(BAD) + 1
    assert_poison_recorded(lib, _files(rt, library.id))


def test_processors_added_to_a_scanned_library_read_its_unchanged_files_once(
    tmp_path: Path,
    make_config: Callable[..., scanguard.Config],
    runtime_factory: Callable[..., scanguard.Runtime],
) -> None:
    """Scanned without processors, then with audio_tags: every audio file gets its tags, once."""
    lib = build_tagged_library(tmp_path / "library")
    plain = runtime_factory(make_config(safeguards=QUIET_SAFEGUARDS))
    library = plain.add_library(str(lib.root))
    assert plain.wait_for_job(plain.start_scan(library.id).id, ("completed",), timeout=30)
    assert all(f.meta is None for f in _files(plain, library.id).values())
    plain.stop()

    rt = runtime_factory(_config(make_config, processors=["audio_tags"]))
    job = rt.wait_for_job(rt.start_scan(library.id).id, ("completed",), timeout=60)
    files = _files(rt, library.id)
    for rel, exp in lib.of_type("audio").items():
        assert (files[rel].meta or {})["audio_tags"]["title"] == exp["tags"]["title"]
    assert all(files[rel].meta is None for rel in lib.of_type("image")), "audio_tags reads audio only"
    assert job.errors == 1, "the corrupt MP3"
    again = rt.wait_for_job(rt.start_scan(library.id).id, ("completed",), timeout=30)
    assert again.files_changed == 0
    assert _files(rt, library.id) == files, "a second rescan reads nothing again"


def test_audio_tags_opens_every_real_audio_file_as_mutagen_file_would(tmp_path: Path) -> None:
    """Issue 18's shortcut (a file whose extension and signature agree is opened as that format, without
    mutagen.File weighing 24 formats) reads exactly what mutagen.File(path, easy=True) reads, corrupt
    file included."""
    import mutagen

    from scanguard.processing import audio_formats

    lib = build_tagged_library(tmp_path / "library")
    paths = [lib.root / rel for rel in lib.of_type("audio")]
    assert {p.suffix for p in paths} == {".flac", ".mp3", ".ogg"}
    for path in paths:
        ours, theirs = audio_formats.load(str(path)), mutagen.File(str(path), easy=True)
        assert type(ours) is type(theirs), path
        assert dict(ours.tags or {}) == dict(theirs.tags or {}), path
        assert ours.info.pprint() == theirs.info.pprint(), path
    corrupt = str(lib.root / lib.corrupt)
    with pytest.raises(mutagen.MutagenError) as ours_error:
        audio_formats.load(corrupt)
    with pytest.raises(mutagen.MutagenError) as theirs_error:
        mutagen.File(corrupt, easy=True)
    assert type(ours_error.value) is type(theirs_error.value)
