"""Real media for tests: a tone encoded by Debian's flac/lame/oggenc, images by Pillow, a clip by ffmpeg.

Every file is made here, in the test, from tools on the machine; nothing is downloaded or checked in.
Encoding is the slow part, so each encoder output is cached under the system temp directory in a folder
keyed by the tools' versions and this module's recipe (`cache_root()`); a library is then a few file copies.

- `build_tagged_library(root)`: a small mixed library whose every value (tags as mutagen's easy interface
  reads them, image facts, video streams) is listed in `TaggedLibrary.expected`; the audio tags are
  written by the encoders' own options, so a reader is checked against files it did not write.
- `build_bulk_audio(root, n)`: n tagged audio files for benchmarks and large tests, made by copying one
  encoded master per format and retagging it with mutagen (about 20,000 files in a few seconds).
"""

from __future__ import annotations

import array
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from mutagen.flac import FLAC
from mutagen.mp3 import EasyMP3
from mutagen.oggvorbis import OggVorbis
from PIL import Image, ImageDraw

TOOLS = ("flac", "lame", "oggenc", "ffmpeg", "ffprobe")
DEBIAN_PACKAGES = "flac lame vorbis-tools ffmpeg"
CACHE_ENV = "SCANGUARD_TEST_MEDIA_CACHE"
RECIPE = 2  # bump when an encoder command or the tone changes: the cache key includes it

# the tone every audio file carries: 16-bit PCM, mono
TONE_SECONDS = 0.5
TONE_RATE = 22050
TONE_HZ = 440.0
DURATION_TOLERANCE = 0.05  # seconds; mutagen reads 0.5 from every format (the MP3 by its LAME info frame)

AUDIO_TAG_KEYS = ("title", "artist", "album", "albumartist", "tracknumber", "discnumber", "date", "genre")
AUDIO_FORMATS = ("flac", "mp3", "ogg")
CODECS = {"flac": "flac", "mp3": "mp3", "ogg": "vorbis"}
MIMES = {"flac": "audio/flac", "mp3": "audio/mp3", "ogg": "audio/vorbis"}  # mutagen's first mime per format
MP4_SIZE = (64, 48)
MP4_CONTAINER = "mov,mp4,m4a,3gp,3g2,mj2"  # ffprobe's format_name for an MP4
EXIF_ORIENTATION = 0x0112  # IFD0
EXIF_IFD = 0x8769  # the Exif sub-IFD
EXIF_DATETIME_ORIGINAL = 0x9003  # in the Exif sub-IFD
EXIF_TIME_FORMAT = "%Y:%m:%d %H:%M:%S"

# the encoders' own tag options (mutagen easy key -> option)
_FLAC_NAMES = {key: key.upper() for key in AUDIO_TAG_KEYS}
_LAME_OPTIONS = {
    "title": ["--tt"],
    "artist": ["--ta"],
    "album": ["--tl"],
    "date": ["--ty"],
    "tracknumber": ["--tn"],
    "genre": ["--tg"],
    "albumartist": ["--tv", "TPE2="],
    "discnumber": ["--tv", "TPOS="],
}
_OGGENC_OPTIONS = {
    "title": ["-t"],
    "artist": ["-a"],
    "album": ["-l"],
    "date": ["-d"],
    "tracknumber": ["-N"],
    "genre": ["-G"],
    "albumartist": ["-c", "ALBUMARTIST="],
    "discnumber": ["-c", "DISCNUMBER="],
}
# command-line tags are decoded by the locale: under C/POSIX lame and oggenc mangle non-ASCII text
_TOOL_ENV_OVERRIDES = {"LC_ALL": "C.UTF-8"}


class MediaToolError(RuntimeError):
    """A media tool is missing or failed while making a test file."""


# ---- tools and the cache --------------------------------------------------------------------------


def tools_missing() -> list[str]:
    """The media tools (flac, lame, oggenc, ffmpeg, ffprobe) that are not on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def missing_reason() -> str:
    """A skip reason naming the absent tools and the Debian packages that provide them ('' if none)."""
    missing = tools_missing()
    if not missing:
        return ""
    return f"media tools missing: {', '.join(missing)} (apt-get install {DEBIAN_PACKAGES})"


def _require_tools() -> None:
    """Fail clearly when a tool is absent (a test that needs them should have skipped)."""
    reason = missing_reason()
    if reason:
        raise MediaToolError(reason)


def _run(cmd: list[str]) -> str:
    """Run one tool quietly with a UTF-8 locale; its stdout, or an error carrying its stderr."""
    env = {**os.environ, **_TOOL_ENV_OVERRIDES}
    done = subprocess.run(cmd, capture_output=True, env=env, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()
        raise MediaToolError(f"{' '.join(cmd)} exited {done.returncode}: {err}")
    return done.stdout.decode("utf-8", "replace")


@cache
def tool_versions() -> dict[str, str]:
    """The first line of each encoder's version output: part of the cache key."""
    _require_tools()
    return {
        "flac": _run(["flac", "--version"]).strip().splitlines()[0],
        "lame": _run(["lame", "--version"]).strip().splitlines()[0],
        "oggenc": _run(["oggenc", "--version"]).strip().splitlines()[0],
        "ffmpeg": _run(["ffmpeg", "-version"]).strip().splitlines()[0],
    }


def cache_root() -> Path:
    """The encoded-file cache: $SCANGUARD_TEST_MEDIA_CACHE, else <tmp>/scanguard-media-<uid>, per tool versions."""
    base = os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(), f"scanguard-media-{os.getuid()}")
    key = hashlib.sha256(json.dumps([RECIPE, tool_versions()], sort_keys=True).encode()).hexdigest()[:16]
    root = Path(base) / key
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def _cached(kind: str, ext: str, params: Mapping[str, Any], make: Callable[[Path], None]) -> Path:
    """The cached output of `make` for these parameters, made once (atomically: safe across processes)."""
    digest = hashlib.sha256(
        json.dumps([kind, dict(params)], sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()[:20]
    target = cache_root() / f"{kind}-{digest}.{ext}"
    if target.exists():
        return target
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".partial-", suffix=f".{ext}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        make(tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


# ---- audio ------------------------------------------------------------------------------------------


def write_tone_wav(path: str | os.PathLike[str], seconds: float = TONE_SECONDS) -> None:
    """A 440 Hz sine as 16-bit PCM mono WAV at 22,050 Hz, written by the stdlib wave module."""
    frames = round(TONE_RATE * seconds)
    samples = array.array(
        "h", (round(9830 * math.sin(2 * math.pi * TONE_HZ * i / TONE_RATE)) for i in range(frames))
    )
    if samples.itemsize != 2:  # pragma: no cover - every CPython platform has a 2-byte short
        raise MediaToolError("array 'h' is not 16-bit here")
    with wave.open(os.fspath(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(TONE_RATE)
        out.writeframes(samples.tobytes())  # WAV is little-endian, as is every platform we run on


def tone_wav() -> Path:
    """The cached tone WAV that every encoder reads."""
    return _cached("tone", "wav", {"seconds": TONE_SECONDS, "rate": TONE_RATE, "hz": TONE_HZ}, write_tone_wav)


def _check_keys(tags: Mapping[str, str]) -> None:
    """Refuse tag names the encoders' options cannot set."""
    unknown = sorted(set(tags) - set(AUDIO_TAG_KEYS))
    if unknown:
        raise ValueError(f"unsupported tag names {unknown}; supported: {', '.join(AUDIO_TAG_KEYS)}")


def _tag_options(options: Mapping[str, list[str]], tags: Mapping[str, str]) -> list[str]:
    """Encoder arguments for the tags: ['--tt', 'Title'] or ['--tv', 'TPE2=Artist']."""
    args: list[str] = []
    for key in AUDIO_TAG_KEYS:
        if key in tags:
            *flags, prefix = options[key]
            if prefix.endswith("="):
                args += [*flags, prefix + tags[key]]
            else:
                args += [prefix, tags[key]]
    return args


def make_flac(path: str | os.PathLike[str], tags: Mapping[str, str]) -> None:
    """Encode the tone as FLAC with Vorbis comments set by `flac -T NAME=value`."""
    _check_keys(tags)
    comments = [
        arg for key in AUDIO_TAG_KEYS if key in tags for arg in ("-T", f"{_FLAC_NAMES[key]}={tags[key]}")
    ]
    _run(["flac", "--silent", "--force", "-o", os.fspath(path), *comments, str(tone_wav())])


def make_mp3(path: str | os.PathLike[str], tags: Mapping[str, str]) -> None:
    """Encode the tone as MP3 (CBR 64 kbps, ID3v2.3 + ID3v1 as lame writes them) tagged by --tt/--ta/--tl/--ty/--tn/--tg/--tv."""
    _check_keys(tags)
    # -b 64: at lame's default 32 kbps for 22 kHz mono a frame is too small for the LAME info frame, and
    # without it mutagen (and ffprobe) estimate the length from the file size, ID3v1 tag included
    _run(
        ["lame", "--quiet", "-b", "64", *_tag_options(_LAME_OPTIONS, tags), str(tone_wav()), os.fspath(path)]
    )


def make_ogg(path: str | os.PathLike[str], tags: Mapping[str, str]) -> None:
    """Encode the tone as Ogg Vorbis tagged by oggenc -t/-a/-l/-d/-N/-G and -c NAME=value (fixed serial)."""
    _check_keys(tags)
    _run(
        [
            "oggenc",
            "--quiet",
            "--serial",
            "1",
            "-o",
            os.fspath(path),
            *_tag_options(_OGGENC_OPTIONS, tags),
            str(tone_wav()),
        ]
    )


_ENCODERS: dict[str, Callable[[str | os.PathLike[str], Mapping[str, str]], None]] = {
    "flac": make_flac,
    "mp3": make_mp3,
    "ogg": make_ogg,
}


def encoded(fmt: str, tags: Mapping[str, str]) -> Path:
    """The cached encoder output for this format and these tags (encoded on first use)."""
    encode = _ENCODERS[fmt]
    return _cached(fmt, fmt, tags, lambda out: encode(out, tags))


def make_corrupt_mp3(path: str | os.PathLike[str]) -> None:
    """An .mp3 that is not one: an empty ID3v2.3 header, then text with no MPEG frame sync.

    mutagen.File(path, easy=True) picks EasyMP3 by the extension and raises mutagen.mp3.HeaderNotFoundError
    ("can't sync to MPEG frame", a MutagenError); it does not return None.
    """
    header = b"ID3\x03\x00\x00\x00\x00\x00\x00"
    Path(path).write_bytes(header + b"this is not MPEG audio, only a file named like it.\n" * 80)


# ---- images and video -------------------------------------------------------------------------------


def _picture(size: tuple[int, int]) -> Image.Image:
    """A deterministic RGB picture: a background and a block, so the encoder has something to do."""
    img = Image.new("RGB", size, (40, 90, 160))
    ImageDraw.Draw(img).rectangle((0, 0, size[0] // 2, size[1] // 3), fill=(230, 200, 40))
    return img


def make_jpeg(
    path: str | os.PathLike[str], size: tuple[int, int], taken_at: datetime, orientation: int
) -> None:
    """A JPEG of `size` with EXIF Orientation (IFD0) and DateTimeOriginal (Exif IFD) written by Pillow."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    exif.get_ifd(EXIF_IFD)[EXIF_DATETIME_ORIGINAL] = taken_at.strftime(EXIF_TIME_FORMAT)
    _picture(size).save(os.fspath(path), format="JPEG", quality=85, exif=exif)


def make_png(path: str | os.PathLike[str], size: tuple[int, int]) -> None:
    """A PNG of `size` with no EXIF."""
    _picture(size).save(os.fspath(path), format="PNG")


def make_mp4(path: str | os.PathLike[str], seconds: float = 0.5) -> None:
    """A 64x48 H.264 (testsrc, 10 fps) + AAC (440 Hz sine, mono 22,050 Hz) MP4 by ffmpeg, bit-exact."""
    width, height = MP4_SIZE
    _run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={width}x{height}:rate=10:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate={TONE_RATE}:duration={seconds}",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-threads",
            "1",
            "-c:a",
            "aac",
            "-b:a",
            "32k",
            "-ac",
            "1",
            "-shortest",
            "-map_metadata",
            "-1",
            "-fflags",
            "+bitexact",
            "-flags:v",
            "+bitexact",
            "-flags:a",
            "+bitexact",
            "-f",
            "mp4",
            os.fspath(path),
        ]
    )


# ---- the small tagged library -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioSpec:
    """One audio file of the small library: where it goes, its format and the tags its encoder writes."""

    path: str
    fmt: str
    tags: dict[str, str]


def _album(
    artist: str, album: str, fmt: str, date: str, genre: str, titles: list[str], **extra: str
) -> list[AudioSpec]:
    """The tracks of one album, numbered from 1 (MP3 track numbers as 'N/total', as lame is given them)."""
    specs = []
    for number, title in enumerate(titles, start=1):
        track = f"{number}/{len(titles)}" if fmt == "mp3" else str(number)
        tags = {
            "title": title,
            "artist": artist,
            "album": album,
            "albumartist": extra.get("albumartist", artist),
            "tracknumber": track,
            "discnumber": extra.get("discnumber", "1"),
            "date": date,
            "genre": genre,
        }
        specs.append(AudioSpec(f"{artist}/{album}/{number:02d} - {title}.{fmt}", fmt, tags))
    return specs


LIBRARY_AUDIO: tuple[AudioSpec, ...] = (
    *_album(
        "Aurora Quartet",
        "Northern Lights",
        "flac",
        "2004-05-17",
        "Classical",
        ["Dawn Chorus", "Midnight Sun", "Polar Drift"],
    ),
    *_album(
        "Nils Ødegård",
        "Café Sessions",
        "mp3",
        "1999",
        "Jazz",
        ["Première", "Second Cup", "Last Order"],
        discnumber="1/2",
    ),
    *_album(
        "Low Orbit",
        "Satellites",
        "ogg",
        "2017",
        "Electronic",
        ["Launch", "Apogee", "Re-entry"],
        albumartist="Various Artists",
        discnumber="2",
    ),
)
LIBRARY_JPEGS = (
    ("Photos/2021/beach.jpg", (64, 48), datetime(2021, 6, 15, 14, 30, 0), 1),
    ("Photos/2021/portrait.jpg", (48, 64), datetime(2021, 7, 1, 9, 5, 42), 6),
)
LIBRARY_PNG = ("Photos/diagram.png", (32, 24))
LIBRARY_MP4 = "Videos/clip.mp4"
LIBRARY_CORRUPT = "Broken Rips/Bad Disc/01 - Not Audio.mp3"


@dataclass(frozen=True, slots=True)
class TaggedLibrary:
    """What build_tagged_library made: the expected reading of each good file, and the corrupt file.

    `expected[relative path]` by media type:
    - audio: media_type "audio", format "flac"|"mp3"|"ogg", codec "flac"|"mp3"|"vorbis", mime (mutagen's
      first: audio/flac, audio/mp3, audio/vorbis), tags (the eight AUDIO_TAG_KEYS, each a str exactly as
      mutagen.File(path, easy=True)[key][0] gives it: MP3 tracknumber "N/3" and discnumber "1/2", FLAC and
      Ogg tracknumber "N"), duration 0.5 (within DURATION_TOLERANCE), sample_rate 22050, channels 1.
      mutagen's easy MP3 also shows "length" ("500", the TLEN frame lame writes), which `tags` leaves out;
    - image: media_type "image", format "JPEG"|"PNG", width, height (as stored, before EXIF orientation),
      orientation (EXIF 0x0112, None for the PNG), taken_at (ISO "2021-06-15T14:30:00", None for the PNG),
      exif_datetime_original (the EXIF text "2021:06:15 14:30:00", None for the PNG);
    - video: media_type "video", container (ffprobe's format_name), duration 0.5, width 64, height 48,
      streams [{codec_type video, codec_name h264, width, height}, {codec_type audio, codec_name aac,
      sample_rate 22050, channels 1}] (ffprobe's JSON gives sample_rate as the string "22050").
    """

    root: Path
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)
    corrupt: str = LIBRARY_CORRUPT

    @property
    def paths(self) -> list[str]:
        """Every media file's relative path (the good ones and the corrupt one), sorted."""
        return sorted([*self.expected, self.corrupt])

    def of_type(self, media_type: str) -> dict[str, dict[str, Any]]:
        """The expected entries of one media type ('audio', 'image' or 'video')."""
        return {path: exp for path, exp in self.expected.items() if exp["media_type"] == media_type}


def _place(root: Path, rel: str) -> Path:
    """root/rel with its folders made."""
    dest = root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest


def build_tagged_library(root: str | os.PathLike[str]) -> TaggedLibrary:
    """A small real library under root: 3 FLAC, 3 MP3, 3 Ogg (encoder-tagged), 2 JPEGs, a PNG, an MP4, a corrupt MP3."""
    _require_tools()
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    expected: dict[str, dict[str, Any]] = {}
    for spec in LIBRARY_AUDIO:
        shutil.copyfile(encoded(spec.fmt, spec.tags), _place(base, spec.path))
        expected[spec.path] = {
            "media_type": "audio",
            "format": spec.fmt,
            "codec": CODECS[spec.fmt],
            "mime": MIMES[spec.fmt],
            "tags": dict(spec.tags),
            "duration": TONE_SECONDS,
            "sample_rate": TONE_RATE,
            "channels": 1,
        }
    for rel, size, taken_at, orientation in LIBRARY_JPEGS:
        make_jpeg(_place(base, rel), size, taken_at, orientation)
        expected[rel] = {
            "media_type": "image",
            "format": "JPEG",
            "width": size[0],
            "height": size[1],
            "orientation": orientation,
            "taken_at": taken_at.isoformat(),
            "exif_datetime_original": taken_at.strftime(EXIF_TIME_FORMAT),
        }
    png_rel, png_size = LIBRARY_PNG
    make_png(_place(base, png_rel), png_size)
    expected[png_rel] = {
        "media_type": "image",
        "format": "PNG",
        "width": png_size[0],
        "height": png_size[1],
        "orientation": None,
        "taken_at": None,
        "exif_datetime_original": None,
    }
    seconds = 0.5
    shutil.copyfile(_cached("mp4", "mp4", {"seconds": seconds}, make_mp4), _place(base, LIBRARY_MP4))
    expected[LIBRARY_MP4] = {
        "media_type": "video",
        "container": MP4_CONTAINER,
        "duration": seconds,
        "width": MP4_SIZE[0],
        "height": MP4_SIZE[1],
        "streams": [
            {"codec_type": "video", "codec_name": "h264", "width": MP4_SIZE[0], "height": MP4_SIZE[1]},
            {"codec_type": "audio", "codec_name": "aac", "sample_rate": TONE_RATE, "channels": 1},
        ],
    }
    make_corrupt_mp3(_place(base, LIBRARY_CORRUPT))
    return TaggedLibrary(root=base, expected=expected, corrupt=LIBRARY_CORRUPT)


# ---- many audio files, fast -------------------------------------------------------------------------

BULK_TRACKS_PER_ALBUM = 20
BULK_ALBUMS_PER_ARTIST = 10
BULK_GENRES = ("Rock", "Jazz", "Classical", "Electronic", "Folk", "Hip-Hop", "Ambient")
_BULK_MASTER_TAGS = dict.fromkeys(AUDIO_TAG_KEYS, "master") | {
    "tracknumber": "1",
    "discnumber": "1",
    "date": "2000",
}
_MUTAGEN_CLASSES: dict[str, Callable[[io.BytesIO], Any]] = {"flac": FLAC, "mp3": EasyMP3, "ogg": OggVorbis}


def bulk_path(i: int) -> str:
    """The relative path of bulk file i: 'Artist NNN/Album NN/NN - Track.ext' (formats cycle flac, mp3, ogg)."""
    track = i % BULK_TRACKS_PER_ALBUM + 1
    album = i // BULK_TRACKS_PER_ALBUM % BULK_ALBUMS_PER_ARTIST
    artist = i // (BULK_TRACKS_PER_ALBUM * BULK_ALBUMS_PER_ARTIST)
    return (
        f"Artist {artist:03d}/Album {album:02d}/{track:02d} - Track.{AUDIO_FORMATS[i % len(AUDIO_FORMATS)]}"
    )


def bulk_tags(i: int) -> dict[str, str]:
    """The tags of bulk file i, as mutagen's easy interface reads them back (every title distinct)."""
    artist = i // (BULK_TRACKS_PER_ALBUM * BULK_ALBUMS_PER_ARTIST)
    album = i // BULK_TRACKS_PER_ALBUM % BULK_ALBUMS_PER_ARTIST
    return {
        "title": f"Track {i}",
        "artist": f"Artist {artist:03d}",
        "album": f"Album {artist:03d}.{album:02d}",
        "albumartist": f"Artist {artist:03d}",
        "tracknumber": str(i % BULK_TRACKS_PER_ALBUM + 1),
        "discnumber": "1",
        "date": str(1960 + i % 60),
        "genre": BULK_GENRES[i % len(BULK_GENRES)],
    }


def build_bulk_audio(root: str | os.PathLike[str], n: int) -> int:
    """n tagged audio files under root (bulk_path(i), bulk_tags(i)): encoded masters copied and retagged by mutagen."""
    _require_tools()
    base = Path(root)
    masters = {fmt: encoded(fmt, _BULK_MASTER_TAGS).read_bytes() for fmt in AUDIO_FORMATS}
    made_dirs: set[Path] = set()
    for i in range(n):
        fmt = AUDIO_FORMATS[i % len(AUDIO_FORMATS)]
        buf = io.BytesIO(masters[fmt])
        audio = _MUTAGEN_CLASSES[fmt](buf)
        for key, value in bulk_tags(i).items():
            audio[key] = value
        buf.seek(0)
        audio.save(buf)
        dest = base / bulk_path(i)
        if dest.parent not in made_dirs:
            dest.parent.mkdir(parents=True, exist_ok=True)
            made_dirs.add(dest.parent)
        dest.write_bytes(buf.getvalue())
    return n
