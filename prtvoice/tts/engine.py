"""What the voice bank needs of a text-to-speech engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from prtvoice.errors import VoiceError

if TYPE_CHECKING:
    from prtvoice.config import Config

# Speech guidance for relaxation sits well under conversational pace (150-160 wpm):
# rate 1.0 in a script means this many words per minute.
CALM_WPM = 135
MIN_WPM, MAX_WPM = 80, 450  # eSpeak NG's usable range


@dataclass(frozen=True)
class VoiceInfo:
    """One voice an engine offers: `id` selects it; `name` and `languages` describe it."""

    id: str
    name: str
    languages: tuple[str, ...] = ()


@runtime_checkable
class Engine(Protocol):
    """A text-to-speech engine. `synthesize` must be safe to call from several threads."""

    name: str  # "pyttsx3" | "command"
    version: str  # part of the cache key

    def voices(self) -> list[VoiceInfo]: ...

    def synthesize(
        self, text: str, *, voice_id: str, rate: float, volume: float, out: Path
    ) -> None:
        """Write `text` spoken as a WAV file at `out`; raise VoiceError on any failure.

        `rate` is relative (1.0 = the engine's calm normal pace); `volume` is 0..1.
        """
        ...

    def close(self) -> None:
        """Stop any worker processes; idempotent."""
        ...


def words_per_minute(rate: float, *, base: int = CALM_WPM) -> int:
    """A relative rate as eSpeak words per minute, kept inside eSpeak's range."""
    return max(MIN_WPM, min(MAX_WPM, round(base * rate)))


def make_engine(config: Config) -> Engine:
    """The engine the user's configuration asks for ("pyttsx3", the default, or "command")."""
    if config.engine == "pyttsx3":
        from prtvoice.tts.pyttsx3_engine import Pyttsx3Engine

        return Pyttsx3Engine()
    if config.engine == "command":
        from prtvoice.tts.command_engine import CommandEngine

        if not config.command:
            raise VoiceError("engine: command needs a `command:` list in the configuration")
        return CommandEngine(argv=tuple(config.command), stdin=config.command_stdin)
    raise VoiceError(f"unknown engine {config.engine!r}: use pyttsx3 or command")


def start_engine(config: Config) -> Engine:
    """The configured engine, its first worker already starting (~0.1 s), for a caller
    that will speak soon and has other start-up work to do meanwhile (`play`, `export`)."""
    engine = make_engine(config)
    warm = getattr(engine, "warm", None)
    if callable(warm):
        warm()
    return engine
