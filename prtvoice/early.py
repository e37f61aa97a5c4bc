"""An MP3 re-export's ffmpegs, started before its script is read.

A re-export whose script has a remembered gain (prtvoice.gain_memory) encodes in
one pass; each ffmpeg takes ~0.1 s of CPU to start (it links some 200 libraries).
`prtvoice export` starts them while it reads and plans the script, when a core is
idle, and `export.export_plan` takes them over.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prtvoice import atomic
from prtvoice.encode import SECOND_HALF, Encoder, encoder_command, format_for
from prtvoice.ffmpeg import find_ffmpeg
from prtvoice.halves import cores, second_path
from prtvoice.options import Options

if TYPE_CHECKING:
    from prtvoice.gain_memory import GainMemory, Recalled


@dataclass
class EarlyEncoders:
    """An MP3 re-export's ffmpegs, started before its script is read (`start_early`).

    A re-export encodes in one pass at the gain the script's last export left
    (GainMemory); each ffmpeg takes ~0.1 s of CPU to start. Started while the
    script is read and planned, when a core is idle, they are ready when the pass
    begins, and their start no longer takes from a pass that keeps both cores busy.
    `export_plan` takes them over: it uses them if its commands are theirs, stops
    them otherwise, and its partial file is theirs (removed unless committed).
    """

    target: Path
    key: str
    sample_rate: int
    out: atomic.AtomicFile  # entered: the partial file exists
    commands: tuple[list[str], list[str] | None]
    first: Encoder
    second: Encoder | None

    def fits(self, *, target: Path, key: str | None, recalled: Recalled | None, sr: int) -> bool:
        """Whether this export is the one they were started for, with a gain to encode at."""
        return (
            recalled is not None
            and key == self.key
            and Path(target) == self.target
            and sr == self.sample_rate
        )

    def take(
        self, command: list[str], second_command: list[str] | None
    ) -> tuple[Encoder | None, Encoder | None]:
        """The ones running these commands (None: no second half); stops the rest."""
        first = self.first if command == self.commands[0] else None
        second = self.second if second_command == self.commands[1] else None
        for encoder in (self.first, self.second):
            if encoder is not None and encoder not in (first, second):
                encoder.kill()
        return first, second

    @contextlib.contextmanager
    def taken_over(self) -> Iterator[atomic.AtomicFile]:
        """The partial file, as `with atomic.AtomicFile(...)` gives one."""
        try:
            yield self.out
        finally:
            self.cancel()  # after a commit: stops nothing, removes nothing but scraps

    def cancel(self) -> None:
        """Stop both ffmpegs, remove their files (unless committed)."""
        for encoder in (self.first, self.second):
            if encoder is not None:
                encoder.kill()
        with contextlib.suppress(OSError):
            second_path(self.out.partial).unlink()
        self.out.__exit__(None, None, None)


def start_early(
    target: Path,
    *,
    script: Path,
    options: Options,
    force: bool,
    memory: GainMemory | None,
    encoders: int = 2,
) -> EarlyEncoders | None:
    """Start an MP3 re-export's ffmpegs now, before its script is read (EarlyEncoders).

    None (nothing started) for any other format, or a script with no gain
    remembered: a first export starts its ffmpeg beside its measuring pass.
    `target` must have passed `check_targets`; `options` are the export's.
    """
    fmt = format_for(options.format)
    if fmt.name != "mp3" or memory is None:
        return None
    sr = options.sample_rate
    key = memory.key(
        script=str(script), fmt=fmt.name, sample_rate=sr, loudness_lufs=options.loudness_lufs,
        true_peak_db=options.true_peak_db,
    )  # fmt: skip
    if memory.recall(key) is None:
        return None
    command_for = functools.partial(
        encoder_command, ffmpeg=find_ffmpeg(), fmt=fmt, sample_rate=sr, bitrate=options.bitrate
    )
    out = atomic.AtomicFile(Path(target), replace=force).__enter__()
    made: list[Encoder] = []
    try:
        first_command = command_for(out=out.partial)
        made.append(Encoder(first_command))
        second_command = None
        if encoders >= 2 and cores() >= 2:
            second_command = command_for(out=second_path(out.partial), overrides=SECOND_HALF)
            made.append(Encoder(second_command))
    except BaseException:
        for encoder in made:
            encoder.kill()
        out.__exit__(None, None, None)
        raise
    return EarlyEncoders(
        Path(target), key, sr, out, (first_command, second_command), made[0],
        made[1] if len(made) > 1 else None,
    )  # fmt: skip
