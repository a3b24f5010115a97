"""Which mutagen format reads an audio file: mutagen.File's own decision, without its per-file overheads.

Imported where the work runs (a worker, preloaded by the forkserver), never by the service.

mutagen.File(path, easy=True) imports its 24 format modules, then asks each format for a score (from the
name, the first 128 bytes, one of them the last 160 bytes) and opens the best: a third of a small file's
reading. Here the list is built once, and a file whose extension and signature name the same format is
opened as that format directly — only where mutagen's scores make it the strict winner whatever else the
file holds (worked out below against mutagen 1.47-1.48's scores), so the result is the one mutagen.File
gives. Any other file goes to mutagen.File with the list, which decides as it always does.
"""

from __future__ import annotations

import functools
from typing import Any

import mutagen
from mutagen.aac import AAC
from mutagen.ac3 import AC3
from mutagen.aiff import AIFF
from mutagen.apev2 import APEv2File
from mutagen.asf import ASF
from mutagen.dsdiff import DSDIFF
from mutagen.dsf import DSF
from mutagen.easyid3 import EasyID3FileType
from mutagen.easymp4 import EasyMP4
from mutagen.flac import FLAC
from mutagen.monkeysaudio import MonkeysAudio
from mutagen.mp3 import EasyMP3
from mutagen.musepack import Musepack
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggtheora import OggTheora
from mutagen.oggvorbis import OggVorbis
from mutagen.optimfrog import OptimFROG
from mutagen.smf import SMF
from mutagen.tak import TAK
from mutagen.trueaudio import EasyTrueAudio
from mutagen.wave import WAVE
from mutagen.wavpack import WavPack

HEADER = 128  # what mutagen.File reads to score the formats
MP3_STARTS = (b"ID3", b"\xff\xf2", b"\xff\xf3", b"\xff\xfa", b"\xff\xfb")  # what EasyMP3.score counts


@functools.cache
def kinds() -> list[type[Any]]:
    """The formats mutagen.File(easy=True) weighs (its order does not matter: it sorts by score and name)."""
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


def signed(extension: str, header: bytes) -> type[Any] | None:
    """The format mutagen.File picks for certain, by extension and signature; None when it must weigh them.

    No other format scores above 2 on these files (EasyMP4: "ftyp" and "mp4" in the header; OggFLAC: "FLAC"
    and "fLaC"; the rest 1 at most), and a tie goes to the greater name:
    - .flac starting "fLaC": FLAC scores 4 (1 + 3 for the extension);
    - .mp3 starting with an ID3 tag or one of the frame syncs EasyMP3 counts: EasyMP3 scores 3 (2 + 1);
    - .ogg starting "OggS" with a Vorbis header: OggVorbis scores 1 and wins the ties ("OggVorbis" is the
      greatest name of those that can score), unless the header could give OggFLAC or EasyMP4 a 2.
    """
    if extension == "flac":
        return FLAC if header.startswith(b"fLaC") else None
    if extension == "mp3":
        return EasyMP3 if header.startswith(MP3_STARTS) else None
    if extension == "ogg":
        vorbis = header.startswith(b"OggS") and b"\x01vorbis" in header
        return OggVorbis if vorbis and b"fLaC" not in header and b"ftyp" not in header else None
    return None


def load(path: str) -> Any:
    """mutagen.File(path, easy=True): the format it picks, loaded (None: no format recognises the file)."""
    dot = path.rfind(".")
    with open(path, "rb") as fh:
        kind = signed(path[dot + 1 :].lower() if dot >= 0 else "", fh.read(HEADER))
        if kind is not None:
            fh.seek(0)
            return kind(fh, filename=path)
    return mutagen.File(path, options=kinds())
