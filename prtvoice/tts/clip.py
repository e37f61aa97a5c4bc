"""From an engine's WAV to a clip: trimmed, faded, resampled, float32 (frames, 1).

eSpeak pads its speech with silence; the clip keeps only a small natural
margin so that the plan's pauses are the pauses the listener hears.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prtvoice.errors import VoiceError

SILENCE = 10 ** (-60 / 20)  # below -60 dBFS counts as the engine's padding
LEAD_SECONDS = 0.02  # margin kept before the first sound
TAIL_SECONDS = 0.08  # and after the last (lets the final consonant decay)
FADE_SECONDS = 0.005  # raised-cosine fade at both ends: no clicks


def read_engine_wav(path: Path) -> tuple[np.ndarray, int]:
    """Any PCM or float WAV as float32 mono samples and its rate; VoiceError if unreadable."""
    fast = _read_pcm16_mono(path)
    if fast is not None:
        return fast
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(path)
    except (OSError, ValueError, EOFError) as exc:
        raise VoiceError(f"the speech engine wrote an unreadable WAV ({path.name}): {exc}") from exc
    if data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        scale = float(max(-info.min, info.max + 1))
        offset = 0.0 if data.dtype.kind == "i" else scale / 2
        samples = (data.astype(np.float64) - offset) / (scale if offset == 0 else offset)
    else:
        samples = data.astype(np.float64)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.size == 0:
        raise VoiceError(f"the speech engine wrote an empty WAV ({path.name})")
    return samples.astype(np.float32), int(rate)


def _read_pcm16_mono(path: Path) -> tuple[np.ndarray, int] | None:
    """What eSpeak NG writes (16-bit PCM mono), read with the standard library.

    Same samples as the general path below; scipy.io's import takes ~0.25 s,
    which would hold up the first clip of a session and so `play`'s first
    sound. None for any other kind of WAV.
    """
    import wave

    try:
        with wave.open(str(path), "rb") as f:
            if f.getsampwidth() != 2 or f.getnchannels() != 1 or f.getcomptype() != "NONE":
                return None
            rate = f.getframerate()
            data = f.readframes(f.getnframes())
    except (OSError, EOFError, wave.Error):
        return None
    if not data:
        return None
    pcm = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
    # x 2**-15 in one float32 pass: exact, so the same floats as dividing in float64.
    return np.multiply(pcm, np.float32(1 / 32768), dtype=np.float32), int(rate)


def shape_clip(samples: np.ndarray, *, engine_rate: int, sample_rate: int) -> np.ndarray:
    """Trim the padding (keeping a margin), fade both ends, resample with soxr.

    Returns float32 (frames, 1) in -1..1; the same input always gives the
    same output. VoiceError when the engine produced only silence.
    """
    loud = np.abs(samples) > SILENCE
    if not loud.any():
        raise VoiceError("the speech engine returned only silence")
    first, last = int(loud.argmax()), len(loud) - 1 - int(loud[::-1].argmax())
    start = max(0, first - round(LEAD_SECONDS * engine_rate))
    end = min(samples.size, last + 1 + round(TAIL_SECONDS * engine_rate))
    fade = min(round(FADE_SECONDS * engine_rate), (end - start) // 2)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade, endpoint=False)) if fade else None
    if engine_rate != sample_rate:
        import soxr

        clip = samples[start:end].astype(np.float64)
        if ramp is not None:
            clip[:fade] *= ramp
            clip[clip.size - fade :] *= ramp[::-1]
        clip = soxr.resample(clip, engine_rate, sample_rate, quality="HQ")
        return np.clip(clip, -1.0, 1.0).astype(np.float32).reshape(-1, 1)
    # At the engine's own rate (every export): float32 throughout, the fades in
    # float64 as above. The same floats: float32 samples widen exactly, and clipping
    # to +-1 and rounding to float32 commute. Half the main process's CPU per clip
    # went to these conversions while the speech workers needed both cores.
    clip = np.array(samples[start:end], dtype=np.float32)
    if ramp is not None:
        clip[:fade] = clip[:fade] * ramp
        clip[clip.size - fade :] = clip[clip.size - fade :] * ramp[::-1]
    np.clip(clip, -1.0, 1.0, out=clip)
    return clip.reshape(-1, 1)
