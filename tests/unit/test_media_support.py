"""The real-media fixtures make what they claim: tags mutagen reads back, EXIF Pillow reads, streams ffprobe sees."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mutagen
import pytest
from mutagen.mp3 import HeaderNotFoundError
from PIL import Image

from tests.support.media import (
    AUDIO_FORMATS,
    AUDIO_TAG_KEYS,
    DURATION_TOLERANCE,
    EXIF_DATETIME_ORIGINAL,
    EXIF_IFD,
    EXIF_ORIENTATION,
    TOOLS,
    TaggedLibrary,
    build_bulk_audio,
    build_tagged_library,
    bulk_path,
    bulk_tags,
    make_flac,
    missing_reason,
    tools_missing,
)

needs_tools = pytest.mark.skipif(bool(missing_reason()), reason=missing_reason() or "media tools present")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> TaggedLibrary:
    """One small tagged library for the module (its files are only read)."""
    return build_tagged_library(tmp_path_factory.mktemp("media") / "lib")


@needs_tools
def test_each_audio_file_reads_back_exactly_the_tags_its_encoder_wrote(library: TaggedLibrary) -> None:
    """mutagen's easy interface finds the eight tags as `expected` lists them, and nothing else but MP3's TLEN."""
    audio = library.of_type("audio")
    assert sorted(exp["format"] for exp in audio.values()) == sorted(AUDIO_FORMATS * 3)
    for rel, exp in audio.items():
        easy = mutagen.File(library.root / rel, easy=True)
        assert easy is not None, rel
        got = {key: list(easy[key]) for key in easy if key in AUDIO_TAG_KEYS}
        assert got == {key: [value] for key, value in exp["tags"].items()}, rel
        extra = set(easy.keys()) - set(AUDIO_TAG_KEYS)
        assert extra == ({"length"} if exp["format"] == "mp3" else set()), rel


@needs_tools
def test_each_audio_file_carries_the_tone_at_its_expected_length_rate_and_channels(
    library: TaggedLibrary,
) -> None:
    """Duration within the tolerance, 22,050 Hz mono, and the mime type mutagen reports for the format."""
    for rel, exp in library.of_type("audio").items():
        easy = mutagen.File(library.root / rel, easy=True)
        assert abs(easy.info.length - exp["duration"]) <= DURATION_TOLERANCE, (rel, easy.info.length)
        assert (easy.info.sample_rate, easy.info.channels) == (exp["sample_rate"], exp["channels"]), rel
        assert easy.mime[0] == exp["mime"], rel


@needs_tools
def test_images_have_their_size_and_the_jpegs_their_exif_orientation_and_original_date(
    library: TaggedLibrary,
) -> None:
    """Pillow reads the stored size and format; the JPEGs' EXIF holds Orientation and DateTimeOriginal."""
    images = library.of_type("image")
    assert sorted(exp["format"] for exp in images.values()) == ["JPEG", "JPEG", "PNG"]
    for rel, exp in images.items():
        with Image.open(library.root / rel) as img:
            assert (img.format, img.width, img.height) == (exp["format"], exp["width"], exp["height"]), rel
            exif = img.getexif()
            assert exif.get(EXIF_ORIENTATION) == exp["orientation"], rel
            original = exif.get_ifd(EXIF_IFD).get(EXIF_DATETIME_ORIGINAL)
            assert original == exp["exif_datetime_original"], rel
    assert {exp["orientation"] for exp in images.values()} == {1, 6, None}


@needs_tools
def test_ffprobe_sees_one_h264_video_and_one_aac_audio_stream_in_the_mp4(library: TaggedLibrary) -> None:
    """The clip is a real MP4 of the expected container, duration, size and codecs."""
    (rel, exp), *others = library.of_type("video").items()
    assert not others
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", str(library.root / rel)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    probe = json.loads(done.stdout)
    assert probe["format"]["format_name"] == exp["container"]
    assert abs(float(probe["format"]["duration"]) - exp["duration"]) <= DURATION_TOLERANCE
    streams = []
    for stream in probe["streams"]:
        keys = ("width", "height") if stream["codec_type"] == "video" else ("sample_rate", "channels")
        entry = {"codec_type": stream["codec_type"], "codec_name": stream["codec_name"]}
        streams.append(entry | {key: int(stream[key]) for key in keys})
    assert streams == exp["streams"]


@needs_tools
def test_the_corrupt_mp3_makes_mutagen_raise_rather_than_parse(library: TaggedLibrary) -> None:
    """mutagen picks its MP3 reader by the extension and cannot find a frame: HeaderNotFoundError, not None."""
    assert library.corrupt not in library.expected
    assert library.corrupt in library.paths
    with pytest.raises(HeaderNotFoundError, match="can't sync to MPEG frame"):
        mutagen.File(library.root / library.corrupt, easy=True)


@needs_tools
def test_a_second_build_of_the_library_is_byte_identical(library: TaggedLibrary, tmp_path: Path) -> None:
    """Files are deterministic (cached encoder output, bit-exact MP4), so every build reads the same."""
    again = build_tagged_library(tmp_path / "again")
    assert again.expected == library.expected
    assert again.paths == library.paths
    for rel in library.paths:
        assert (again.root / rel).read_bytes() == (library.root / rel).read_bytes(), rel


@needs_tools
def test_bulk_audio_cycles_the_formats_and_gives_every_file_its_own_tags(tmp_path: Path) -> None:
    """Each bulk file sits at bulk_path(i) and mutagen reads back exactly bulk_tags(i)."""
    n = 45
    assert build_bulk_audio(tmp_path, n) == n
    found = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert found == sorted(bulk_path(i) for i in range(n))
    titles = set()
    for i in range(n):
        assert bulk_path(i).endswith("." + AUDIO_FORMATS[i % 3])
        easy = mutagen.File(tmp_path / bulk_path(i), easy=True)
        assert {key: easy[key] for key in AUDIO_TAG_KEYS} == {k: [v] for k, v in bulk_tags(i).items()}, i
        assert abs(easy.info.length - 0.5) <= DURATION_TOLERANCE
        titles.add(easy["title"][0])
    assert len(titles) == n


def test_tools_missing_names_every_tool_absent_from_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an empty PATH all five tools are missing, and the skip reason says how to install them."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert tools_missing() == list(TOOLS)
    assert missing_reason().endswith("(apt-get install flac lame vorbis-tools ffmpeg)")


def test_a_tag_name_no_encoder_option_can_set_is_refused(tmp_path: Path) -> None:
    """An unsupported tag is a ValueError naming it, raised before any tool runs."""
    with pytest.raises(ValueError, match="composer"):
        make_flac(tmp_path / "x.flac", {"title": "t", "composer": "c"})
