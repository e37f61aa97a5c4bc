"""Transcripts timed from the plan: LRC (phone music players), SRT and WebVTT.

One cue per `say` event (an inline pause splits a sentence into two cues, as
the plan does); breathing voice cues ("in", "out") only when asked for. Times
come from the plan's exact sample positions, so the text changes on the
sample the voice starts.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from prtvoice.plan import Plan

TRANSCRIPT_FORMATS: tuple[str, ...] = ("lrc", "srt", "vtt")


@dataclass(frozen=True)
class Cue:
    """A line of text on screen from `start` to `end` (frames)."""

    start: int
    end: int
    text: str


def cues(plan: Plan, *, breathing: bool = False) -> list[Cue]:
    """The spoken lines of a plan, in order."""
    lines = []
    for event in plan.events:
        wanted = event.kind == "say" or (breathing and event.kind in ("inhale", "hold", "exhale"))
        if wanted and event.text:
            lines.append(Cue(event.start, event.end, _one_line(event.text)))
    return [cue for cue in lines if cue.text]


def _one_line(text: str) -> str:
    # A blank line would end an SRT/VTT cue early; a newline breaks an LRC line.
    return re.sub(r"\s+", " ", text).strip()


def _ms(frames: int, sample_rate: int) -> int:
    return round(frames * 1000 / sample_rate)


def _clock(ms: int, separator: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def _lrc_stamp(ms: int) -> str:
    centis = round(ms / 10)
    minutes, rest = divmod(centis, 6000)
    seconds, hundredths = divmod(rest, 100)
    return f"[{minutes:02d}:{seconds:02d}.{hundredths:02d}]"


def lrc(plan: Plan, *, artist: str, album: str, breathing: bool = False) -> str:
    """LRC lyrics: [ti:]/[ar:]/[al:]/[length:] headers, then `[mm:ss.xx]text` lines.

    A line is cleared (an empty timestamped line) when the voice stops and a
    pause of more than a second follows, so a player does not keep showing
    old text through a long silence.
    """
    sr = plan.sample_rate
    total_ms = _ms(plan.frames, sr)
    minutes, seconds = divmod(round(total_ms / 1000), 60)
    lines = [
        f"[ti:{_one_line(plan.script.title)}]",
        f"[ar:{_one_line(artist)}]",
        f"[al:{_one_line(album)}]",
        f"[length:{minutes:02d}:{seconds:02d}]",
        "[by:prtvoice]",
    ]
    spoken = cues(plan, breathing=breathing)
    for index, cue in enumerate(spoken):
        lines.append(f"{_lrc_stamp(_ms(cue.start, sr))}{cue.text}")
        following = spoken[index + 1].start if index + 1 < len(spoken) else plan.frames
        if following - cue.end > sr:
            lines.append(_lrc_stamp(_ms(cue.end, sr)))
    return "\n".join(lines) + "\n"


def srt(plan: Plan, *, breathing: bool = False) -> str:
    """SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`."""
    sr = plan.sample_rate
    blocks = []
    for number, cue in enumerate(cues(plan, breathing=breathing), start=1):
        start, end = _ms(cue.start, sr), _ms(cue.end, sr)
        blocks.append(f"{number}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{cue.text}\n")
    return "\n".join(blocks)


def vtt(plan: Plan, *, breathing: bool = False) -> str:
    """WebVTT: a `WEBVTT` header, then `HH:MM:SS.mmm --> HH:MM:SS.mmm` cues."""
    sr = plan.sample_rate
    parts = [f"WEBVTT - {_one_line(plan.script.title)}\n"]
    for cue in cues(plan, breathing=breathing):
        start, end = _ms(cue.start, sr), _ms(cue.end, sr)
        # &, < and > are markup in cue text; escaping also keeps "-->" out of it.
        text = html.escape(cue.text, quote=False)
        parts.append(f"{_clock(start, '.')} --> {_clock(end, '.')}\n{text}\n")
    return "\n".join(parts)


def render_transcript(
    kind: str, plan: Plan, *, artist: str, album: str, breathing: bool = False
) -> str:
    """The transcript of `kind` ("lrc", "srt" or "vtt")."""
    if kind == "lrc":
        return lrc(plan, artist=artist, album=album, breathing=breathing)
    if kind == "srt":
        return srt(plan, breathing=breathing)
    if kind == "vtt":
        return vtt(plan, breathing=breathing)
    raise ValueError(f"unknown transcript format {kind!r}")


def parse_transcript_kinds(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """`lrc,srt` (or a list) as a tuple of known kinds; ValueError names a wrong one."""
    if not spec:
        return ()
    items = (
        spec.split(",")
        if isinstance(spec, str)
        else [part for item in spec for part in item.split(",")]
    )
    kinds: list[str] = []
    for item in items:
        kind = item.strip().lower()
        if not kind:
            continue
        if kind not in TRANSCRIPT_FORMATS:
            raise ValueError(
                f"unknown transcript format {kind!r}; choose from {', '.join(TRANSCRIPT_FORMATS)}"
            )
        if kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)
