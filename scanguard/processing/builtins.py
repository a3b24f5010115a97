"""The built-in processors: audio tags (mutagen), image facts (Pillow), video streams (ffprobe)."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from scanguard.processing import tools
from scanguard.processing.context import FileContext

AUDIO_TAG_NAMES = {  # mutagen easy key -> the name audio_tags stores it under
    "title": "title",
    "artist": "artist",
    "album": "album",
    "albumartist": "album_artist",
    "tracknumber": "track",
    "discnumber": "disc",
    "date": "date",
    "genre": "genre",
}
EXIF_ORIENTATION = 0x0112
EXIF_DATETIME = 0x0132
EXIF_IFD = 0x8769
EXIF_DATETIME_ORIGINAL = 0x9003


# what each built-in's parser imports on its first file: the forkserver imports it once for every worker
PRELOAD: dict[str, tuple[str, ...]] = {
    "audio_tags": tuple(
        f"mutagen.{name}"
        for name in [
            "easyid3",
            "easymp4",
            "mp3",
            "flac",
            "oggvorbis",
            "oggopus",
            "oggflac",
            "oggspeex",
            "oggtheora",
            "mp4",
            "asf",
            "aiff",
            "wave",
            "apev2",
            "musepack",
            "wavpack",
            "trueaudio",
            "optimfrog",
            "monkeysaudio",
            "aac",
            "ac3",
            "smf",
            "tak",
            "dsf",
            "dsdiff",
        ]
    ),
    "image_info": tuple(
        f"PIL.{name}"
        for name in [
            "Image",
            "JpegImagePlugin",
            "PngImagePlugin",
            "GifImagePlugin",
            "WebPImagePlugin",
            "TiffImagePlugin",
            "BmpImagePlugin",
        ]
    ),
}


@functools.cache
def _audio_kinds() -> list[type[Any]]:
    """The formats mutagen.File(easy=True) weighs, in its order (mutagen 1.47-1.48's list): handed to it
    as `options`, so that it does not import its 24 modules again for every file (an eighth of a small
    file's reading). Which format wins is mutagen's decision, as before."""
    from mutagen.aac import AAC  # noqa: PLC0415 - imported where the work runs (a worker)
    from mutagen.ac3 import AC3  # noqa: PLC0415
    from mutagen.aiff import AIFF  # noqa: PLC0415
    from mutagen.apev2 import APEv2File  # noqa: PLC0415
    from mutagen.asf import ASF  # noqa: PLC0415
    from mutagen.dsdiff import DSDIFF  # noqa: PLC0415
    from mutagen.dsf import DSF  # noqa: PLC0415
    from mutagen.easyid3 import EasyID3FileType  # noqa: PLC0415
    from mutagen.easymp4 import EasyMP4  # noqa: PLC0415
    from mutagen.flac import FLAC  # noqa: PLC0415
    from mutagen.monkeysaudio import MonkeysAudio  # noqa: PLC0415
    from mutagen.mp3 import EasyMP3  # noqa: PLC0415
    from mutagen.musepack import Musepack  # noqa: PLC0415
    from mutagen.oggflac import OggFLAC  # noqa: PLC0415
    from mutagen.oggopus import OggOpus  # noqa: PLC0415
    from mutagen.oggspeex import OggSpeex  # noqa: PLC0415
    from mutagen.oggtheora import OggTheora  # noqa: PLC0415
    from mutagen.oggvorbis import OggVorbis  # noqa: PLC0415
    from mutagen.optimfrog import OptimFROG  # noqa: PLC0415
    from mutagen.smf import SMF  # noqa: PLC0415
    from mutagen.tak import TAK  # noqa: PLC0415
    from mutagen.trueaudio import EasyTrueAudio  # noqa: PLC0415
    from mutagen.wave import WAVE  # noqa: PLC0415
    from mutagen.wavpack import WavPack  # noqa: PLC0415

    return [
        EasyMP3,
        EasyTrueAudio,
        OggTheora,
        OggSpeex,
        OggVorbis,
        OggFLAC,
        FLAC,
        AIFF,
        APEv2File,
        EasyMP4,
        EasyID3FileType,
        WavPack,
        Musepack,
        MonkeysAudio,
        OptimFROG,
        ASF,
        OggOpus,
        AAC,
        AC3,
        SMF,
        TAK,
        DSF,
        DSDIFF,
        WAVE,
    ]


class UnreadableMedia(ValueError):
    """The file is not what its extension says, or its parser could not make sense of it."""


def audio_tags(ctx: FileContext) -> dict[str, Any]:
    """Tags and stream facts of an audio file, by mutagen's easy interface."""
    import mutagen  # noqa: PLC0415 - imported where the work runs (a worker), not by the service

    audio = mutagen.File(ctx.abs_path, options=_audio_kinds())
    if audio is None:
        raise UnreadableMedia("mutagen does not recognise this file as audio")
    out: dict[str, Any] = {}
    # `is None`, not truthiness: EasyID3's len() asks each of its ~60 keys whether it is set (a third of
    # an MP3's reading)
    tags = {} if audio.tags is None else audio.tags
    for key, name in AUDIO_TAG_NAMES.items():
        values = tags.get(key) if hasattr(tags, "get") else None
        if values:
            out[name] = str(values[0]) if len(values) == 1 else [str(v) for v in values]
    info = audio.info
    for attr, name in (("length", "duration"), ("bitrate", "bitrate"), ("sample_rate", "sample_rate")):
        value = getattr(info, attr, None)
        if value is not None:
            out[name] = round(float(value), 3) if attr == "length" else int(value)
    channels = getattr(info, "channels", None)
    if channels is not None:
        out["channels"] = int(channels)
    mime = getattr(audio, "mime", None) or []
    out["codec"] = mime[0] if mime else type(audio).__name__.lower()
    return out


def _exif_time(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip("\x00 "), "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return value.strip("\x00 ") or None


def image_info(ctx: FileContext) -> dict[str, Any]:
    """Size, format, orientation and taken-at of an image, by Pillow (headers only, no decode)."""
    from PIL import Image  # noqa: PLC0415 - imported where the work runs

    with Image.open(ctx.abs_path) as img:
        out: dict[str, Any] = {
            "width": img.width,
            "height": img.height,
            "format": img.format,
            "mode": img.mode,
        }
        exif = img.getexif()
        if exif:
            orientation = exif.get(EXIF_ORIENTATION)
            if orientation is not None:
                out["orientation"] = int(orientation)
            taken = _exif_time(exif.get_ifd(EXIF_IFD).get(EXIF_DATETIME_ORIGINAL)) or _exif_time(
                exif.get(EXIF_DATETIME)
            )
            if taken is not None:
                out["taken_at"] = taken
    return out


def video_probe(ctx: FileContext) -> dict[str, Any]:
    """Container, duration and streams of a video, by ffprobe (bounded by the file's deadline)."""
    done = tools.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", ctx.abs_path]
    )
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UnreadableMedia(f"ffprobe exited with {done.returncode}: {reason[-1] if reason else ''}")
    probe = json.loads(done.stdout or b"{}")
    fmt = probe.get("format", {})
    streams = []
    out: dict[str, Any] = {"container": fmt.get("format_name")}
    if fmt.get("duration") is not None:
        out["duration"] = round(float(fmt["duration"]), 3)
    if fmt.get("bit_rate") is not None:
        out["bitrate"] = int(fmt["bit_rate"])
    for stream in probe.get("streams", []):
        kind = stream.get("codec_type")
        entry = {"type": kind, "codec": stream.get("codec_name")}
        if kind == "video":
            entry |= {"width": stream.get("width"), "height": stream.get("height")}
            out.setdefault("video_codec", stream.get("codec_name"))
            out.setdefault("width", stream.get("width"))
            out.setdefault("height", stream.get("height"))
        elif kind == "audio":
            entry |= {"channels": stream.get("channels"), "sample_rate": stream.get("sample_rate")}
            out.setdefault("audio_codec", stream.get("codec_name"))
        streams.append(entry)
    out["streams"] = streams
    return out
