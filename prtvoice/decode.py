"""Audio files -> samples: ffmpeg decodes any format, soxr resamples.

ffmpeg is asked for a 32-bit float WAV on a pipe at the file's own rate and
channel count; the WAV header tells both (so no ffprobe is needed: imageio-ffmpeg ships
none), and soxr, a real band-limited resampler, brings it to the session's
rate. Reading stops once more than `max_seconds` of audio has arrived, so a
huge or endless input never fills memory, and a time-out stops a hung ffmpeg.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from prtvoice import procwait
from prtvoice.errors import EncoderError, SoundError
from prtvoice.ffmpeg import find_ffmpeg

DECODE_TIMEOUT = 120.0  # seconds for one file; decoding ten minutes of MP3 takes about one
_FLOAT = 3  # WAVE_FORMAT_IEEE_FLOAT
_EXTENSIBLE = 0xFFFE
_HEADER_LIMIT = 1 << 16  # a WAV header from ffmpeg is tiny; more means it is not one
# A script is untrusted input: ffmpeg may open only the one local file (no
# network, no other protocols) and read it only with a container demuxer, so a
# playlist or concat file cannot pull in other files or URLs.
_PROTOCOLS = "file"
_FORMATS = ",".join((
    "wav", "w64", "flac", "ogg", "mp3", "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "aac",
    "matroska", "webm", "aiff", "caf", "au", "wv", "ape", "asf", "amr", "ac3", "eac3",
    "dts", "tta", "mpc", "mpc8", "voc", "shn", "dsf", "avi", "flv", "mpeg", "mpegts",
))  # fmt: skip


def decode_file(
    path: Path, *, sample_rate: int, max_seconds: float, timeout: float = DECODE_TIMEOUT
) -> np.ndarray:
    """The first audio stream of `path`, mixed to mono, at `sample_rate`: float32 (frames, 1).

    Raises SoundError naming the file when it is missing, not audio, corrupt,
    empty, longer than `max_seconds`, or when ffmpeg takes over `timeout`
    seconds. Values are as decoded (a float file may exceed 1.0: callers limit).
    """
    path = Path(path)
    if not path.is_file():
        raise SoundError(f"{path}: sound file not found")
    try:
        ffmpeg = find_ffmpeg()
    except EncoderError as exc:
        raise SoundError(f"{path}: cannot decode: {exc}") from exc
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
        # Let ffmpeg itself stop a little past the limit, so we can tell "too long".
        "-t", f"{max_seconds + 1.0:.3f}",
        "-protocol_whitelist", _PROTOCOLS, "-format_whitelist", _FORMATS,
        # "file:" so that a name like "concat:a|b" or "http:..." is never a protocol.
        "-i", f"file:{path.resolve()}",
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
        "-c:a", "pcm_f32le", "-f", "wav", "pipe:1",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
        )
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout, stop)
        timer.start()
        rate, channels, data, too_long = None, 1, b"", False
        try:
            rate, channels, data, too_long = _read_wav(process.stdout, max_seconds=max_seconds)
        finally:
            if too_long:
                process.kill()  # we stopped reading: do not wait for the rest
            process.stdout.close()
            try:
                procwait.wait(process, timeout=timeout)
            except subprocess.TimeoutExpired:
                stop()
                process.wait()
            timer.cancel()
        errors.seek(0)
        message = errors.read(4000).decode(errors="replace").strip()
    if timed_out.is_set():
        raise SoundError(f"{path}: ffmpeg did not finish decoding within {timeout:g} s")
    if too_long:
        raise SoundError(
            f"{path}: the sound is longer than {max_seconds:g} s; shorten it "
            "(long ambience loops well from a few minutes)"
        )
    if process.returncode != 0 or rate is None:
        detail = _reason(message, path)
        raise SoundError(f"{path}: cannot decode the sound: {detail}")
    samples = np.frombuffer(data, dtype="<f4")
    if channels > 1:
        # The plain average: ffmpeg's own downmix (-ac 1) lifts a centred mono
        # recording stored as stereo by 3 dB, which could push it past full scale.
        usable = len(samples) - len(samples) % channels
        samples = samples[:usable].reshape(-1, channels).mean(axis=1, dtype=np.float32)
    if not np.all(np.isfinite(samples)):
        samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    if len(samples) == 0:
        raise SoundError(f"{path}: the file holds no audio")
    if rate != sample_rate:
        import soxr  # lazy: planning without file sounds never needs it

        samples = soxr.resample(samples, rate, sample_rate, quality="VHQ")
    return np.ascontiguousarray(samples, dtype=np.float32).reshape(-1, 1)


def _reason(message: str, path: Path) -> str:
    """ffmpeg's complaint in a therapist's words where we know it, else its last line."""
    if "matches no streams" in message:
        return "it holds no audio stream"
    if "not on whitelist" in message:
        return "not an audio format prtvoice reads (WAV, FLAC, OGG, MP3, M4A and the like)"
    lines = [line for line in message.splitlines() if line.strip()]
    if not lines:
        return "not an audio file ffmpeg can read"
    last = lines[-1]
    for prefix in (f"file:{path.resolve()}: ", f"{path}: "):
        if last.startswith(prefix):
            return last[len(prefix) :]
    return last


def _read_exactly(stream, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _read_wav(stream, *, max_seconds: float) -> tuple[int | None, int, bytes, bool]:
    """(sample rate, channels, interleaved float32 bytes, too long) from ffmpeg's WAV.

    Rate is None when the stream is not a WAV (ffmpeg failed before writing).
    A pipe WAV's sizes are placeholders, so the data chunk is read to the end
    of the stream, but never past max_seconds worth of bytes (+1 frame).
    """
    head = _read_exactly(stream, 12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None, 1, b"", False
    rate = None
    channels = 1
    consumed = 12
    while True:
        chunk = _read_exactly(stream, 8)
        if len(chunk) < 8:
            return None, 1, b"", False
        tag, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        consumed += 8
        if tag == b"data":
            break
        if size > _HEADER_LIMIT or consumed + size > _HEADER_LIMIT:
            return None, 1, b"", False
        body = _read_exactly(stream, size + (size & 1))
        consumed += len(body)
        if tag == b"fmt ":
            fmt, channels, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            if fmt not in (_FLOAT, _EXTENSIBLE) or not 1 <= channels <= 64 or bits != 32:
                return None, 1, b"", False
    if rate is None:
        return None, 1, b"", False
    limit = (int(max_seconds * rate) + 1) * 4 * channels
    data = bytearray()
    while len(data) <= limit:
        part = stream.read(min(1 << 20, limit + 4 - len(data)))
        if not part:
            break
        data += part
    too_long = len(data) > limit
    usable = len(data) - len(data) % (4 * channels)
    return rate, channels, bytes(data[:usable]), too_long
