"""The built-in processors: audio tags (mutagen), image facts (Pillow), video streams (ffprobe)."""

from __future__ import annotations

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
    # audio_formats imports every format mutagen weighs (the 24 modules mutagen.File would import)
    "audio_tags": ("scanguard.processing.audio_formats",),
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


class UnreadableMedia(ValueError):
    """The file is not what its extension says, or its parser could not make sense of it."""


def audio_tags(ctx: FileContext) -> dict[str, Any]:
    """Tags and stream facts of an audio file, by mutagen's easy interface."""
    from scanguard.processing import audio_formats  # noqa: PLC0415 - mutagen: only where the work runs

    audio = audio_formats.load(ctx.abs_path)
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
