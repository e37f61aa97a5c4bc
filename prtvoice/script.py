"""YAML file -> Script: the validating loader for the format (shared/script-format.md).

The Script this returns is fully resolved: variables substituted, `repeat`
unrolled, `include` inlined, inline pauses split out, breathing patterns and
`for:` turned into numbers, sound references checked and turned into paths.
The planner never sees YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class Location:
    """Where a node stood in its YAML file (1-based line and column)."""

    file: Path
    line: int
    col: int


@dataclass(frozen=True)
class VoiceSettings:
    """A voice request: name (id or case-insensitive substring) or None for the default.

    `rate` is relative to the engine's normal rate; `volume` is 0..1.
    """

    name: str | None = None
    rate: float = 1.0
    volume: float = 1.0


@dataclass(frozen=True)
class SoundRef:
    """A built-in sound (path is None) or a file already checked to be inside the sandbox."""

    name: str
    path: Path | None = None

    @property
    def builtin(self) -> bool:
        return self.path is None


@dataclass(frozen=True)
class Say:
    """Text for the TTS engine (variables substituted; holds no inline pauses)."""

    text: str
    voice: VoiceSettings
    where: Location


@dataclass(frozen=True)
class Pause:
    """Silence; a flexible one is scaled to meet the session's target duration."""

    seconds: float
    flexible: bool
    where: Location


@dataclass(frozen=True)
class Sound:
    """A cue sound played whole; the next step starts when it ends."""

    sound: SoundRef
    where: Location


BreathCue = Literal["tone", "voice", "both", "none"]


@dataclass(frozen=True)
class Breathe:
    """Paced breathing: `cycles` rounds of (inhale, hold, exhale, hold-after) seconds."""

    inhale: float
    hold: float
    exhale: float
    hold_after: float
    cycles: int
    cue: BreathCue
    voice: VoiceSettings
    where: Location

    @property
    def cycle_seconds(self) -> float:
        return self.inhale + self.hold + self.exhale + self.hold_after


Step = Say | Pause | Sound | Breathe


@dataclass(frozen=True)
class Section:
    """A titled run of steps; becomes a chapter."""

    title: str
    steps: tuple[Step, ...]
    where: Location


@dataclass(frozen=True)
class Ambience:
    """A bed under the whole session at `gain` (linear, relative to the voice)."""

    sound: SoundRef
    gain: float
    where: Location


@dataclass(frozen=True)
class Script:
    """A loaded, validated, fully resolved script."""

    path: Path
    id: str
    title: str
    kind: str
    summary: str
    language: str
    duration: float | None  # target seconds, or None
    voice: VoiceSettings
    ambience: Ambience | None
    variables: Mapping[str, str]
    sections: tuple[Section, ...]
    where: Location = field(compare=False, default=None)  # type: ignore[assignment]
    # Where `duration:` stood, so a target that cannot be met points at it.
    duration_where: Location | None = field(compare=False, default=None)
