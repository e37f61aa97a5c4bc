"""Encoding a stream of float32 blocks with ffmpeg, fed through its stdin.

No temporary WAV: blocks go to ffmpeg as raw f32le while it encodes, so a
session of any length costs the memory of a block, and rendering (here) and
encoding (in ffmpeg's process) run on two cores at once.

Formats and their calm-speech defaults (mono):

| format | encoder | default | rate |
| --- | --- | --- | --- |
| mp3 | libmp3lame | 96 kbit/s CBR | the session's (export: 22.05 kHz, MPEG-2 Layer III) |
| m4a | aac (ffmpeg's native) | 96 kbit/s | the session's |
| opus | libopus | 48 kbit/s | 48 kHz (Opus's own rate) |
| ogg | libvorbis, else ffmpeg's native vorbis | 96 kbit/s | 44.1 kHz (libvorbis refuses 96k at 22.05 kHz) |
| flac | flac | lossless, 16-bit | the session's |
| wav | pcm_s16le | 16-bit PCM | the session's |

When a format has its own rate, ffmpeg resamples to it while encoding.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prtvoice import procwait
from prtvoice.errors import EncoderError

# What an ffmpeg can do is found beside ffmpeg itself (prtvoice.ffmpeg, free of numpy).
from prtvoice.ffmpeg import available_encoders, ffmpeg_version  # noqa: F401


@dataclass(frozen=True)
class Format:
    """How one output format is encoded."""

    name: str
    suffix: str
    muxer: str  # ffmpeg's -f
    encoders: tuple[str, ...]  # preferred first
    bitrate: str | None  # default; None for lossless
    sample_rate: int | None = None  # None: the session's rate
    extra: tuple[str, ...] = ()
    lossy: bool = True
    # Where tags and chapters come from: "ffmetadata" (ffmpeg writes both), "vorbis"
    # (ffmpeg writes tags, mutagen the CHAPTERxxx comments), "id3" (mutagen writes
    # both after encoding) or "none" (ffmpeg writes tags given with -metadata).
    chapters: str = "ffmetadata"


FORMATS: dict[str, Format] = {
    "mp3": Format(
        "mp3",
        ".mp3",
        "mp3",
        ("libmp3lame",),
        "96k",
        # ID3v2.3 plays on the most devices; tags are written by mutagen afterwards.
        # compression_level 7 is `lame -q 7`: ~30 % less encoder time than the default,
        # no audible difference for mono speech at 96 kbit/s.
        extra=("-compression_level", "7", "-id3v2_version", "3", "-write_xing", "1"),
        chapters="id3",
    ),
    "m4a": Format("m4a", ".m4a", "ipod", ("aac",), "96k", extra=("-movflags", "+faststart")),
    "opus": Format(
        "opus",
        ".opus",
        "opus",
        ("libopus",),
        "48k",
        sample_rate=48000,
        extra=("-application", "audio"),
        chapters="vorbis",
    ),
    # libvorbis allows at most ~80 kbit/s for 22.05 kHz mono: keep 96k at 44.1 kHz.
    "ogg": Format(
        "ogg",
        ".ogg",
        "ogg",
        ("libvorbis", "vorbis"),
        "96k",
        sample_rate=44100,
        chapters="vorbis",
    ),
    "flac": Format(
        "flac",
        ".flac",
        "flac",
        ("flac",),
        None,
        extra=("-sample_fmt", "s16"),
        lossy=False,
        chapters="vorbis",
    ),
    "wav": Format("wav", ".wav", "wav", ("pcm_s16le",), None, lossy=False, chapters="none"),
}
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)
# The second half of an MP3 encoded on two cores (prtvoice.halves): no bit reservoir
# (its frames before the join are dropped), no ID3 tag (its frames are appended).
SECOND_HALF = ("-reservoir", "0", "-id3v2_version", "0")


def format_for(name: str) -> Format:
    """The Format called `name` (case-insensitive); EncoderError naming the choices."""
    try:
        return FORMATS[name.lower().lstrip(".")]
    except KeyError:
        raise EncoderError(
            f"unknown format {name!r}; choose one of {', '.join(FORMAT_NAMES)}"
        ) from None


def format_from_suffix(path: Path) -> Format | None:
    """The format a file name's suffix asks for (".oga" counts as ogg), or None."""
    suffix = path.suffix.lower()
    for fmt in FORMATS.values():
        if fmt.suffix == suffix:
            return fmt
    return FORMATS["ogg"] if suffix == ".oga" else None


def choose_encoder(fmt: Format, ffmpeg: str) -> str:
    """The first of the format's encoders this ffmpeg has; EncoderError if none."""
    have = available_encoders(ffmpeg)
    for encoder in fmt.encoders:
        if encoder in have:
            return encoder
    raise EncoderError(
        f"{ffmpeg} cannot encode {fmt.name}: it has no {' or '.join(fmt.encoders)} encoder; "
        "install a full ffmpeg (apt install ffmpeg) or choose another --format"
    )


def encoder_command(
    *,
    ffmpeg: str,
    fmt: Format,
    sample_rate: int,
    out: Path,
    bitrate: str | None = None,
    metadata_file: Path | None = None,
    tags: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
) -> list[str]:
    """The ffmpeg command line that reads f32le mono from stdin and writes `out`.

    `overrides`: output options after the format's own (ffmpeg takes the last).
    """
    encoder = choose_encoder(fmt, ffmpeg)
    command = [
        ffmpeg,
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "f32le",
        "-ar",
        str(sample_rate),
        "-ac",
        "1",
        "-i",
        "pipe:0",
    ]
    if metadata_file is not None:
        command += [
            "-f",
            "ffmetadata",
            "-i",
            str(metadata_file),
            "-map_metadata",
            "1",
            "-map_chapters",
            "1",
        ]
    command += ["-map", "0:a", "-c:a", encoder]
    if encoder == "vorbis":  # ffmpeg's own vorbis encoder is marked experimental
        command += ["-strict", "-2", "-ac", "2"]  # and only encodes stereo
    rate = bitrate or fmt.bitrate
    if rate and fmt.lossy:
        command += ["-b:a", rate]
    if fmt.sample_rate and fmt.sample_rate != sample_rate:
        # soxr when this ffmpeg has it; swr's default is fine otherwise.
        command += ["-ar", str(fmt.sample_rate)]
    command += list(fmt.extra) + list(overrides)
    for key, value in (tags or {}).items():
        command += ["-metadata", f"{key}={value}"]
    command += ["-f", fmt.muxer, str(out)]
    return command


PIPE_BYTES = 1 << 20  # ~12 s of 22.05 kHz float32 mono between renderer and encoder


def _widen_pipe(stream) -> None:
    # Linux pipes hold 64 KiB: two render blocks. A wider pipe lets rendering and
    # encoding run apart on their two cores instead of in lockstep. Best effort:
    # F_SETPIPE_SZ is Linux's (1031), and a system limit may refuse the size.
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (ImportError, OSError, ValueError, AttributeError):
        pass


class Encoder:
    """An ffmpeg process encoding what `write` sends it; use as a context manager.

    Leaving the block normally waits for ffmpeg and raises EncoderError if it
    failed; leaving it by an exception kills ffmpeg at once (the caller then
    removes the partial file).
    """

    def __init__(self, command: Sequence[str], *, timeout: float = 120.0):
        self.command = list(command)
        self.timeout = timeout
        self._stderr: deque[str] = deque(maxlen=40)
        try:
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise EncoderError(f"could not start {self.command[0]}: {exc}") from exc
        _widen_pipe(self._process.stdin)
        # Drain stderr on a thread so a chatty ffmpeg never blocks on a full pipe.
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        for raw in self._process.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip())

    def write(self, block: np.ndarray) -> None:
        """Send one float32 block (frames, 1) to the encoder."""
        data = np.ascontiguousarray(block, dtype="<f4").tobytes()
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(data)
        except (BrokenPipeError, OSError) as exc:
            procwait.wait(self._process, timeout=self.timeout)
            raise EncoderError(self._failure("stopped taking audio")) from exc

    def close(self) -> None:
        """End the stream and wait for ffmpeg; EncoderError if it failed."""
        try:
            assert self._process.stdin is not None
            self._process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            code = procwait.wait(self._process, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise EncoderError(f"ffmpeg did not finish within {self.timeout:g} s") from None
        self._reader.join(timeout=5)
        if code != 0:
            raise EncoderError(self._failure(f"failed (exit status {code})"))

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            procwait.wait(self._process, timeout=10)
        if self._process.stdin:
            with contextlib.suppress(OSError):
                self._process.stdin.close()

    def _failure(self, what: str) -> str:
        self._reader.join(timeout=5)
        detail = "; ".join(line for line in self._stderr if line)[-600:]
        text = f"ffmpeg {what}"
        return f"{text}: {detail}" if detail else text

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.kill()
