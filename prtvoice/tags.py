"""Tags and chapters for exported files.

One chapter per plan section (empty sections have no time and are left out).
MP3 gets ID3v2.3 tags with CHAP + CTOC frames written by mutagen after
encoding. M4A gets tags and native MP4 chapters from an ffmetadata file that
ffmpeg reads while encoding. Ogg Vorbis, Opus and FLAC get their tags from the
same ffmetadata file and their chapters as CHAPTERxxx / CHAPTERxxxNAME
comments (the Xiph chapter extension, which ffprobe lists as chapters) written
by mutagen: ffmpeg 5.1 writes Opus chapter times one second late and none at
all for Vorbis and FLAC. WAV gets RIFF INFO tags from ffmpeg.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prtvoice.plan import Plan

GENRE = "Meditation"


@dataclass(frozen=True)
class Chapter:
    """A titled span of the file, in milliseconds [start, end)."""

    title: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Tags:
    """What the file says about itself."""

    title: str
    artist: str
    album: str
    genre: str = GENRE
    comment: str = ""
    track: tuple[int, int] | None = None  # (number, total) in a batch
    language: str | None = None

    def as_ffmpeg(self) -> dict[str, str]:
        """ffmpeg's generic metadata keys (each muxer maps them to its own tags)."""
        values = {
            "title": self.title,
            "artist": self.artist,
            "album_artist": self.artist,
            "album": self.album,
            "genre": self.genre,
            "comment": self.comment,
        }
        if self.track:
            values["track"] = f"{self.track[0]}/{self.track[1]}"
        if self.language:
            values["language"] = self.language
        return {k: v for k, v in values.items() if v}


def tags_for(plan: Plan, *, artist: str, album: str, track: tuple[int, int] | None = None) -> Tags:
    """The tags of a plan's export: title, artist/album, genre and the script id."""
    script = plan.script
    comment = f"prtvoice script {script.id} ({script.kind})"
    if script.summary:
        comment += f": {script.summary}"
    return Tags(
        title=script.title,
        artist=artist,
        album=album,
        comment=comment,
        track=track,
        language=plan.language,
    )


def chapters_for(plan: Plan) -> list[Chapter]:
    """One chapter per non-empty section, times rounded to the millisecond."""
    sr = plan.sample_rate
    chapters = []
    for section in plan.sections:
        if section.end <= section.start:
            continue
        chapters.append(
            Chapter(section.title, section.start * 1000 // sr, section.end * 1000 // sr)
        )
    return chapters


def _escape(value: str) -> str:
    # ffmetadata: "=", ";", "#", "\" and newlines are escaped with a backslash.
    out = []
    for char in value:
        if char in "=;#\\\n":
            out.append("\\")
        out.append(char)
    return "".join(out)


def ffmetadata(tags: Tags, chapters: Sequence[Chapter]) -> str:
    """An ffmetadata file (ffmpeg -f ffmetadata) holding the tags and chapters."""
    lines = [";FFMETADATA1"]
    lines += [f"{key}={_escape(value)}" for key, value in tags.as_ffmpeg().items()]
    for chapter in chapters:
        lines += [
            "[CHAPTER]",
            "TIMEBASE=1/1000",
            f"START={chapter.start_ms}",
            f"END={chapter.end_ms}",
            f"title={_escape(chapter.title)}",
        ]
    return "\n".join(lines) + "\n"


def write_id3(path: Path, tags: Tags, chapters: Sequence[Chapter]) -> None:
    """Replace the MP3's ID3 tag by ours (ID3v2.3) with CHAP frames and a CTOC."""
    from mutagen.id3 import (
        CHAP,
        COMM,
        CTOC,
        ID3,
        TALB,
        TCON,
        TIT2,
        TLAN,
        TPE1,
        TPE2,
        TRCK,
        TSSE,
        CTOCFlags,
    )

    id3 = ID3()
    id3.add(TIT2(encoding=3, text=tags.title))
    id3.add(TPE1(encoding=3, text=tags.artist))
    id3.add(TPE2(encoding=3, text=tags.artist))
    id3.add(TALB(encoding=3, text=tags.album))
    id3.add(TCON(encoding=3, text=tags.genre))
    if tags.comment:
        id3.add(COMM(encoding=3, lang="eng", desc="", text=tags.comment))
    if tags.track:
        id3.add(TRCK(encoding=3, text=f"{tags.track[0]}/{tags.track[1]}"))
    if tags.language:
        id3.add(TLAN(encoding=3, text=tags.language))
    id3.add(TSSE(encoding=3, text="prtvoice"))
    ids = _ordered_element_ids([chapter.title for chapter in chapters])
    if chapters:
        id3.add(
            CTOC(
                element_id="toc",
                flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                child_element_ids=ids,
                sub_frames=[TIT2(encoding=3, text=tags.title)],
            )
        )
    for element_id, chapter in zip(ids, chapters, strict=True):
        id3.add(
            CHAP(
                element_id=element_id,
                start_time=chapter.start_ms,
                end_time=chapter.end_ms,
                start_offset=0xFFFFFFFF,
                end_offset=0xFFFFFFFF,
                sub_frames=[TIT2(encoding=3, text=chapter.title)],
            )
        )
    id3.save(path, v2_version=3)


def _ordered_element_ids(titles: Sequence[str]) -> list[str]:
    """CHAP element ids that keep the frames in chapter order in the file.

    mutagen writes frames of equal priority sorted by their size, which put
    chapters out of order (ffprobe and some players list CHAP frames in file
    order, not CTOC order). Padding each id so that id + title grows by one
    byte per chapter makes the size order the chapter order.
    """
    # ID3v2.3 has no UTF-8: mutagen stores the titles as UTF-16.
    sizes = [len(title.encode("utf-16-le")) for title in titles]
    longest = max(sizes, default=0)
    ids = []
    for index, size in enumerate(sizes):
        stem = f"chp{index}"
        ids.append(stem + "-" * (longest - size + index + 12 - len(stem)))
    return ids


def _vorbis_clock(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def write_vorbis_chapters(path: Path, chapters: Sequence[Chapter]) -> None:
    """Set CHAPTERxxx comments in an Ogg Vorbis, Ogg Opus or FLAC file (others kept)."""
    import mutagen

    audio = mutagen.File(path)
    if audio is None or audio.tags is None:
        raise ValueError(f"{path} has no Vorbis comments to add chapters to")
    for key in [k for k in audio.tags.keys() if k.upper().startswith("CHAPTER")]:  # noqa: SIM118 - iterating VComment gives pairs
        del audio.tags[key]
    for index, chapter in enumerate(chapters):
        audio.tags[f"CHAPTER{index:03d}"] = _vorbis_clock(chapter.start_ms)
        audio.tags[f"CHAPTER{index:03d}NAME"] = chapter.title
    audio.save()
