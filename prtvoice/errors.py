"""The one exception tree of prtvoice. Only the CLI turns these into messages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path


class ExitStatus(IntEnum):
    """Process exit statuses, one per kind of failure."""

    OK = 0
    INPUT = 1  # the user's input: a script, a variable, a target that exists
    USAGE = 2  # command-line usage (Click's own code)
    VOICE = 3  # the text-to-speech engine
    AUDIO_DEVICE = 4  # PortAudio or the output device
    ENCODER = 5  # ffmpeg or the output file
    INTERRUPTED = 130  # Ctrl-C / SIGTERM


class PrtvoiceError(Exception):
    """Base of every error prtvoice raises on purpose."""

    exit_status: ExitStatus = ExitStatus.INPUT


@dataclass(frozen=True)
class Problem:
    """One problem at one place in a script file (line and column are 1-based)."""

    file: Path
    line: int
    col: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class ScriptError(PrtvoiceError):
    """A script (or an included file) breaks the format; holds every problem found."""

    exit_status = ExitStatus.INPUT

    def __init__(self, problems: list[Problem] | Problem):
        self.problems: list[Problem] = (
            [problems] if isinstance(problems, Problem) else list(problems)
        )
        if not self.problems:
            raise ValueError("ScriptError needs at least one problem")
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def at(cls, file: Path, line: int, col: int, message: str, hint: str | None = None):
        return cls(Problem(Path(file), line, col, message, hint))

    # The first problem's place, for callers that want just one.
    @property
    def file(self) -> Path:
        return self.problems[0].file

    @property
    def line(self) -> int:
        return self.problems[0].line

    @property
    def col(self) -> int:
        return self.problems[0].col

    @property
    def message(self) -> str:
        return self.problems[0].message

    @property
    def hint(self) -> str | None:
        return self.problems[0].hint


class InputError(PrtvoiceError):
    """Bad user input that is not inside a script: a --set value, a missing file, a flag."""

    exit_status = ExitStatus.INPUT


class VoiceError(PrtvoiceError):
    """The text-to-speech engine is missing, failed, hung or returned no audio."""

    exit_status = ExitStatus.VOICE


class SoundError(PrtvoiceError):
    """A sound file is missing, unreadable or not audio."""

    exit_status = ExitStatus.INPUT


class AudioDeviceError(PrtvoiceError):
    """PortAudio is missing, no output device exists, or the device went away."""

    exit_status = ExitStatus.AUDIO_DEVICE


class EncoderError(PrtvoiceError):
    """ffmpeg is missing or failed, or the output file could not be written."""

    exit_status = ExitStatus.ENCODER


class OutputExistsError(PrtvoiceError):
    """The export target exists and --force was not given."""

    exit_status = ExitStatus.INPUT


class Interrupted(PrtvoiceError):
    """The user stopped the work (Ctrl-C or SIGTERM)."""

    exit_status = ExitStatus.INTERRUPTED
