"""The second engine: a command-line TTS the user configured (never a shell).

The command is an argv list with placeholders: {text}, {voice}, {wpm},
{rate} (relative), {volume} (0..1), {amplitude} (eSpeak's 0..200) and {out}
(the WAV to write). With `stdin: true` the text goes to the command's
standard input instead of {text}. A time-out stops a hung command; its
stderr goes into the error message.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from prtvoice.errors import VoiceError
from prtvoice.tts.engine import CALM_WPM, VoiceInfo, words_per_minute

FIELDS = ("text", "voice", "wpm", "rate", "volume", "amplitude", "out")


class CommandEngine:
    """Runs `argv` once per clip. Voices are whatever the command accepts as {voice}."""

    name = "command"

    def __init__(
        self,
        *,
        argv: Sequence[str],
        stdin: bool = False,
        timeout: float = 60.0,
        base_wpm: int = CALM_WPM,
        voice_list: Sequence[VoiceInfo] = (),
        default_voice: str = "default",
    ) -> None:
        if not argv:
            raise VoiceError("the TTS command is empty")
        for part in argv:
            try:
                part.format(**dict.fromkeys(FIELDS, ""))
            except (KeyError, IndexError, ValueError) as exc:
                raise VoiceError(
                    f"the TTS command has a bad placeholder in {part!r} "
                    f"(use {', '.join('{' + f + '}' for f in FIELDS)})"
                ) from exc
        if not stdin and not any("{text}" in part for part in argv):
            raise VoiceError("the TTS command needs {text} in its arguments, or `stdin: true`")
        if not any("{out}" in part for part in argv):
            raise VoiceError("the TTS command needs {out}: the WAV file it writes")
        self.argv = tuple(argv)
        self.stdin = stdin
        self.timeout = timeout
        self.base_wpm = base_wpm
        self._voices = list(voice_list) or [VoiceInfo(default_voice, default_voice, ())]

    @property
    def version(self) -> str:
        # The command line itself and the program it runs identify the voice.
        program = shutil.which(self.argv[0]) or self.argv[0]
        digest = hashlib.sha256("\0".join((program, *self.argv)).encode()).hexdigest()[:16]
        return f"command-{digest}"

    def describe(self) -> str:
        return f"command engine: {' '.join(self.argv)}" + (" (text on stdin)" if self.stdin else "")

    def voices(self) -> list[VoiceInfo]:
        return list(self._voices)

    def close(self) -> None:
        """Nothing to stop: each clip is its own short-lived process."""

    def synthesize(
        self, text: str, *, voice_id: str, rate: float, volume: float, out: Path
    ) -> None:
        values = {
            "text": "" if self.stdin else text,
            "voice": voice_id,
            "wpm": str(words_per_minute(rate, base=self.base_wpm)),
            "rate": f"{rate:g}",
            "volume": f"{volume:g}",
            "amplitude": str(round(max(0.0, min(1.0, volume)) * 100)),
            "out": str(out),
        }
        argv = [part.format(**values) for part in self.argv]
        try:
            done = subprocess.run(
                argv,
                input=text.encode("utf-8") if self.stdin else None,
                stdin=None if self.stdin else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=self.timeout,
            )
        except FileNotFoundError as exc:
            raise VoiceError(f"the TTS command {self.argv[0]!r} was not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise VoiceError(
                f"the TTS command {self.argv[0]!r} hung: no result in {self.timeout:g} s"
            ) from exc
        except OSError as exc:
            raise VoiceError(f"the TTS command {self.argv[0]!r} could not run: {exc}") from exc
        stderr = done.stderr.decode("utf-8", "replace").strip()
        if done.returncode != 0:
            raise VoiceError(
                f"the TTS command {self.argv[0]!r} failed with status {done.returncode}"
                + (f": {stderr[-1000:]}" if stderr else "")
            )
        if not Path(out).is_file() or Path(out).stat().st_size <= 44:
            raise VoiceError(
                f"the TTS command {self.argv[0]!r} wrote no audio to {out}"
                + (f": {stderr[-1000:]}" if stderr else "")
            )
