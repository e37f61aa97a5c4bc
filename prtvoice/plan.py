"""Script -> Plan: the exact timeline, in samples at one session sample rate.

Speech lengths come from the real clips (the voice bank synthesizes or reads
them from its cache), so the plan is exact: the rendered audio puts every
event on the sample given here, and the session lasts exactly `frames`.

Flexible pauses are scaled together so that a target duration is met to the
sample: the flexible frames needed are shared out in proportion to each
pause's nominal length by cumulative integer rounding, so the parts always add
up to the exact total.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from prtvoice.errors import InputError, ScriptError, SoundError
from prtvoice.names import (
    CUE_WORDS,
    DEFAULT_LANGUAGE,
    FLEX_MAX_SCALE,
    FLEX_MIN_SCALE,
    MAX_SESSION_SECONDS,
)
from prtvoice.options import Options
from prtvoice.script import (
    Ambience,
    Breathe,
    Location,
    Pause,
    Say,
    Script,
    Sound,
    SoundRef,
    Step,
    VoiceSettings,
)

EventKind = Literal["say", "pause", "sound", "inhale", "hold", "exhale"]
MAX_EVENTS = 50_000  # one every 0.3 s for 4 h, far beyond any real session; laying out 100000 took over a second


class SpeechLengths(Protocol):
    """What the planner needs of the voice bank: a clip's exact length at a rate."""

    def frames(self, text: str, voice: VoiceSettings, language: str) -> int: ...


class SoundLengths(Protocol):
    """What the planner needs of the sound bank: a cue sound's exact length."""

    def frames(self, ref: SoundRef) -> int: ...


@dataclass(frozen=True)
class Event:
    """One thing on the timeline, from `start` for `length` frames.

    - say: `text` spoken with `voice`.
    - pause: silence (`flexible` tells whether it was scaled).
    - sound: `sound` played whole.
    - inhale / hold / exhale: a breathing phase; `tone` is whether the pitch
      cue sounds, `text` the cue word a voice cue speaks at the phase start
      (None for no voice cue).
    """

    start: int
    length: int
    kind: EventKind
    section: int
    text: str | None = None
    voice: VoiceSettings | None = None
    sound: SoundRef | None = None
    tone: bool = False
    flexible: bool = False
    where: Location | None = field(default=None, compare=False)

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class PlanSection:
    """A section's span on the timeline: [start, end) in frames."""

    title: str
    start: int
    end: int


@dataclass(frozen=True)
class FlexReport:
    """How flexible pauses were scaled to meet a target (for `outline`)."""

    target_frames: int | None
    nominal_frames: int  # the flexible pauses' total before scaling
    scaled_frames: int  # and after
    count: int

    @property
    def scale(self) -> float:
        return self.scaled_frames / self.nominal_frames if self.nominal_frames else 1.0


@dataclass(frozen=True)
class Plan:
    """The exact timeline of one session."""

    script: Script
    sample_rate: int
    frames: int
    sections: tuple[PlanSection, ...]
    events: tuple[Event, ...]
    ambience: Ambience | None
    language: str
    flex: FlexReport

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def section_at(self, frame: int) -> int:
        """Index of the section playing at `frame` (the last one past the end)."""
        for index, section in enumerate(self.sections):
            if frame < section.end:
                return index
        return len(self.sections) - 1

    def to_json(self) -> dict:
        """The plan of the contract: times in seconds from the session start."""
        sr = self.sample_rate

        def sec(frames: int) -> float:
            return round(frames / sr, 6)

        events = []
        for e in self.events:
            item: dict = {"start": sec(e.start), "end": sec(e.end), "kind": e.kind}
            if e.kind == "say":
                item["text"] = e.text
            elif e.kind == "sound":
                item["name"] = e.sound.name if e.sound else None
            elif e.kind == "pause":
                item["flexible"] = e.flexible
            else:
                item["cue"] = [c for c, on in (("tone", e.tone), ("voice", e.text)) if on]
            item["section"] = e.section
            events.append(item)
        return {
            "id": self.script.id,
            "title": self.script.title,
            "kind": self.script.kind,
            "duration": sec(self.frames),
            "sample_rate": sr,
            "sections": [
                {"title": s.title, "start": sec(s.start), "end": sec(s.end)} for s in self.sections
            ],
            "events": events,
        }


# ---------------------------------------------------------------------------
# Flexible pauses


class FlexibleFrames(Protocol):
    """Decides the length of the flexible pause number `index` (0-based)."""

    def __call__(self, index: int, nominal: int, position: int) -> int: ...


def share_out(nominals: Sequence[int], total: int) -> list[int]:
    """Split `total` frames over pauses in proportion to `nominals`, summing exactly."""
    whole = sum(nominals)
    if whole == 0:
        return [0] * len(nominals)
    shares, running, given = [], 0, 0
    for nominal in nominals:
        running += nominal
        upto = running * total // whole
        shares.append(upto - given)
        given = upto
    return shares


def nominal_flexible(script: Script, sample_rate: int) -> list[int]:
    """Nominal frames of every flexible pause, in timeline order."""
    return [
        round(step.seconds * sample_rate)
        for _, step in flat_steps(script)
        if isinstance(step, Pause) and step.flexible
    ]


# ---------------------------------------------------------------------------
# Layout


def flat_steps(script: Script) -> Iterator[tuple[int, Step]]:
    """(section index, step) for every step, in order."""
    for index, section in enumerate(script.sections):
        for step in section.steps:
            yield index, step


def effective_voice(voice: VoiceSettings, options: Options) -> VoiceSettings:
    """The listener's settings on top of the script's: default voice, overall rate."""
    return replace(
        voice,
        name=voice.name if voice.name is not None else options.voice,
        rate=voice.rate * options.rate,
    )


def phase_frames(step: Breathe, sample_rate: int) -> list[tuple[EventKind, int]]:
    """The phases of a whole breathing block with their exact lengths.

    Boundaries are rounded from the block's start, not phase by phase, so many
    cycles never drift off their scheduled samples.
    """
    pattern: list[tuple[EventKind, float]] = [
        ("inhale", step.inhale),
        ("hold", step.hold),
        ("exhale", step.exhale),
        ("hold", step.hold_after),
    ]
    phases: list[tuple[EventKind, int]] = []
    elapsed_seconds = 0.0
    placed = 0
    for _ in range(step.cycles):
        for kind, seconds in pattern:
            if seconds <= 0:
                continue
            elapsed_seconds += seconds
            boundary = round(elapsed_seconds * sample_rate)
            phases.append((kind, boundary - placed))
            placed = boundary
    return phases


def layout(
    script: Script,
    *,
    options: Options,
    speech: SpeechLengths,
    sounds: SoundLengths,
    flexible: FlexibleFrames,
    start_section: int = 0,
) -> Iterator[Event]:
    """Yield the session's events one by one, each starting where the last ended.

    Lazy on purpose: the player starts sounding the first events while later
    speech is still being synthesized. `start_section` lays out from that
    section on, starting at frame 0 (previewing one part of a script).
    """
    sr = options.sample_rate
    language = script.language or DEFAULT_LANGUAGE
    words = CUE_WORDS.get(language, CUE_WORDS[DEFAULT_LANGUAGE])
    position = 0
    limit = round(MAX_SESSION_SECONDS * sr)
    flex_index = 0
    count = 0
    for section, step in flat_steps(script):
        if section < start_section:
            if isinstance(step, Pause) and step.flexible:
                flex_index += 1
            continue
        if isinstance(step, Say):
            voice = effective_voice(step.voice, options)
            length = speech.frames(step.text, voice, language)
            events = [
                Event(
                    position, length, "say", section, text=step.text, voice=voice, where=step.where
                )
            ]
        elif isinstance(step, Pause):
            if step.flexible:
                length = flexible(flex_index, round(step.seconds * sr), position)
                flex_index += 1
            else:
                length = round(step.seconds * sr)
            events = [
                Event(position, length, "pause", section, flexible=step.flexible, where=step.where)
            ]
        elif isinstance(step, Sound):
            events = [
                Event(
                    position,
                    _sound_frames(sounds, step, script),
                    "sound",
                    section,
                    sound=step.sound,
                    where=step.where,
                )
            ]
        elif isinstance(step, Breathe):
            voice = effective_voice(step.voice, options)
            tone = step.cue in ("tone", "both")
            spoken = step.cue in ("voice", "both")
            events = []
            at = position
            for kind, length in phase_frames(step, sr):
                events.append(
                    Event(
                        at,
                        length,
                        kind,
                        section,
                        text=words[kind] if spoken else None,
                        voice=voice if spoken else None,
                        tone=tone and kind != "hold",
                        where=step.where,
                    )
                )
                at += length
        else:  # pragma: no cover - the loader makes only these four
            raise TypeError(f"unknown step {step!r}")
        for event in events:
            if event.length <= 0:
                continue  # a zero-length pause or phase has nothing to place
            count += 1
            if count > MAX_EVENTS:
                raise ScriptError.at(
                    *_place(event.where, script),
                    f"the session has more than {MAX_EVENTS} events; split it into shorter scripts",
                )
            if event.end > limit:
                # Stop here, not after laying out a session of days: the check in
                # plan_script comes only once every event is placed.
                raise ScriptError.at(
                    *_place(event.where, script),
                    f"the session runs over the limit of {clock(MAX_SESSION_SECONDS)} at this step",
                )
            yield event
            position = event.end


def _sound_frames(sounds: SoundLengths, step: Sound, script: Script) -> int:
    """A sound step's length; a file that cannot be decoded is the script's error, located."""
    try:
        return sounds.frames(step.sound)
    except SoundError as exc:
        detail = str(exc).removeprefix(f"{step.sound.path}: ")
        raise ScriptError.at(
            *_place(step.where, script), f"the sound {step.sound.name!r} cannot be used: {detail}"
        ) from exc


def _place(where: Location | None, script: Script) -> tuple:
    where = where or script.where
    if where is None:
        return (script.path, 1, 1)
    return (where.file, where.line, where.col)


# ---------------------------------------------------------------------------
# The exact plan


def plan_script(
    script: Script,
    *,
    options: Options,
    speech: SpeechLengths,
    sounds: SoundLengths,
    target_seconds: float | None = None,
    start_section: int = 0,
    only_section: int | None = None,
    prefetch: Callable[[Iterable[tuple[str, VoiceSettings, str]]], None] | None = None,
) -> Plan:
    """Plan the whole session exactly.

    `target_seconds` (from --minutes) overrides the script's `duration`.
    `prefetch`, when given, is handed every clip the plan needs first, so a
    voice bank can synthesize them in parallel before they are asked for one
    by one. `only_section` plans just that section (preview); `start_section`
    plans from that section to the end.
    """
    sr = options.sample_rate
    if only_section is not None:
        script = replace(script, sections=(script.sections[only_section],))
        start_section = 0
    if start_section:
        script = replace(script, sections=script.sections[start_section:])
    language = script.language or DEFAULT_LANGUAGE
    if prefetch is not None:
        prefetch(speech_requests(script, options))

    target = target_seconds if target_seconds is not None else script.duration
    nominals = nominal_flexible(script, sr)
    if target is None:
        shares = nominals
    else:
        # Lay out once with flexible pauses at zero to learn the fixed length.
        fixed = sum(
            e.length
            for e in layout(
                script,
                options=options,
                speech=speech,
                sounds=sounds,
                flexible=lambda index, nominal, position: 0,
            )
        )
        shares = _fit(
            script,
            fixed=fixed,
            nominals=nominals,
            target=target,
            sr=sr,
            from_cli=target_seconds is not None,
        )

    events = tuple(
        layout(
            script,
            options=options,
            speech=speech,
            sounds=sounds,
            flexible=lambda index, nominal, position: shares[index],
        )
    )
    frames = events[-1].end if events else 0
    if frames > round(MAX_SESSION_SECONDS * sr):
        raise ScriptError.at(
            *_place(script.where, script),
            f"the session lasts {clock(frames / sr)}, over the limit of "
            f"{clock(MAX_SESSION_SECONDS)}",
        )
    sections = []
    for index, section in enumerate(script.sections):
        spans = [e for e in events if e.section == index]
        if spans:
            start, end = spans[0].start, spans[-1].end
        else:  # an empty section sits where the previous one ended
            start = end = sections[-1].end if sections else 0
        sections.append(PlanSection(section.title, start, end))
    ambience = script.ambience
    return Plan(
        script=script,
        sample_rate=sr,
        frames=frames,
        sections=tuple(sections),
        events=events,
        ambience=ambience,
        language=language,
        flex=FlexReport(
            target_frames=None if target is None else round(target * sr),
            nominal_frames=sum(nominals),
            scaled_frames=sum(shares),
            count=len(nominals),
        ),
    )


def speech_requests(script: Script, options: Options) -> Iterator[tuple[str, VoiceSettings, str]]:
    """Every (text, voice, language) the session speaks, in order of first use."""
    language = script.language or DEFAULT_LANGUAGE
    words = CUE_WORDS.get(language, CUE_WORDS[DEFAULT_LANGUAGE])
    seen: set = set()
    for _, step in flat_steps(script):
        items: list[tuple[str, VoiceSettings, str]] = []
        if isinstance(step, Say):
            items.append((step.text, effective_voice(step.voice, options), language))
        elif isinstance(step, Breathe) and step.cue in ("voice", "both"):
            voice = effective_voice(step.voice, options)
            for kind, seconds in (
                ("inhale", step.inhale),
                ("hold", step.hold),
                ("exhale", step.exhale),
                ("hold", step.hold_after),
            ):
                if seconds > 0:
                    items.append((words[kind], voice, language))
        for item in items:
            if item not in seen:
                seen.add(item)
                yield item


def _fit(
    script: Script, *, fixed: int, nominals: list[int], target: float, sr: int, from_cli: bool
) -> list[int]:
    """Shares of the flexible frames that make the session last exactly `target`."""
    target_frames = round(target * sr)
    nominal = sum(nominals)
    # Each pause may shrink or stretch only so far: pacing must stay humane.
    shortest = fixed + sum(round(n * FLEX_MIN_SCALE) for n in nominals)
    longest = fixed + sum(round(n * FLEX_MAX_SCALE) for n in nominals)
    if not nominals:
        if target_frames == fixed:
            return []
        message = (
            f"cannot make the session last {clock(target)}: it has no flexible pauses "
            f"(write `pause: 5s~`), so it always lasts {clock(fixed / sr)}"
        )
        _fit_error(script, message, from_cli)
    if not shortest <= target_frames <= longest:
        message = (
            f"cannot make the session last {clock(target)}: with its flexible pauses "
            f"scaled between x{FLEX_MIN_SCALE:g} and x{FLEX_MAX_SCALE:g} it can last from "
            f"{clock(shortest / sr)} (shortest) to {clock(longest / sr)} (longest)"
        )
        _fit_error(script, message, from_cli)
    del nominal
    return share_out(nominals, target_frames - fixed)


def _fit_error(script: Script, message: str, from_cli: bool) -> None:
    if from_cli:
        raise InputError(f"{script.path}: {message}")
    raise ScriptError.at(*_place(script.duration_where or script.where, script), message)


def clock(seconds: float) -> str:
    """A duration as people read it: 1:05:03, 8:02, 0:07.5 (tenths only when they show)."""
    tenths = round(seconds * 10)  # round once, so 59.97 s reads 1:00.0, never 0:60.0
    whole, frac = divmod(tenths, 10)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    tail = f"{secs:02d}" if frac == 0 else f"{secs:02d}.{frac}"
    if hours:
        return f"{hours}:{minutes:02d}:{tail}"
    return f"{minutes}:{tail}"
