"""Sound generators: bells, breathing cue tones and ambience loops, made from numbers.

Pure functions of their arguments (and a seed): no files, no downloads, no
state. Every generator returns float32 mono samples, shape (frames,), at the
sample rate it is given; `sounds.py` wraps them into the (frames, 1) contract
and caches them.

Ambience loops are periodic by construction: noise is shaped in the frequency
domain over the whole loop (a circular filter) and every sine has a whole number
of cycles in the loop, so sample L-1 runs into sample 0 exactly as any sample
runs into the next. That is seamless in the strict sense, with no crossfade dip
in the middle of the noise (a crossfade is still used for recorded files, whose
ends do not meet: see `crossfade_loop`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

LOOP_SECONDS = 30.0  # long enough that a listener does not hear the pattern repeat
BED_LUFS = -20.0  # every bed is normalised to this loudness (about a TTS voice's)
BED_PEAK = 0.5  # and never peaks above this, whatever its spectrum
TONE_CHUNK = 1 << 16  # breath tones are computed on this grid (see breath_tone)
TONE_RMS_DBFS = -22.0
TONE_EDGE_SECONDS = 0.15
TONE_LOW_HZ = 196.0  # G3
TONE_HIGH_HZ = 293.66  # D4: a fifth above, a calm interval

_LN_1000 = np.log(1000.0)  # 60 dB of amplitude decay


# ---------------------------------------------------------------------------
# Shared shapes


def raised_cosine(frames: int) -> np.ndarray:
    """A rise from 0 towards 1 over `frames` samples (0 at index 0, never reaching 1)."""
    if frames <= 0:
        return np.zeros(0, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(np.pi * np.arange(frames) / frames)


def fade_edges(samples: np.ndarray, *, fade_in: int, fade_out: int) -> np.ndarray:
    """`samples` (1-D) with raised-cosine fades; a fade in starts at 0, a fade out ends at 0."""
    out = samples.astype(np.float32, copy=True)
    n = len(out)
    fade_in = min(fade_in, n)
    fade_out = min(fade_out, n)
    if fade_in:
        out[:fade_in] *= raised_cosine(fade_in).astype(np.float32)
    if fade_out:
        # The rise reversed: its last value is exactly 0, the clip ends in silence.
        out[n - fade_out :] *= raised_cosine(fade_out)[::-1].astype(np.float32)
    return out


# ---------------------------------------------------------------------------
# Bells


@dataclass(frozen=True)
class Strike:
    """One struck note: when, how high (Hz of the lowest partial), how hard."""

    delay: float
    fundamental: float
    amplitude: float


@dataclass(frozen=True)
class BellDesign:
    """A struck metal sound as a sum of inharmonic, exponentially decaying partials.

    `partials` are (frequency ratio, amplitude, T60 seconds); every partial is a
    pair of sines `beat_hz` apart, which gives a real bowl's slow shimmer.
    """

    strikes: tuple[Strike, ...]
    partials: tuple[tuple[float, float, float], ...]
    seconds: float
    attack: float  # raised-cosine attack, seconds: soft, never a click
    release: float  # final fade to exact silence, seconds
    peak: float  # speech peaks around 0.5-0.9; cues sit a little under it
    beat_hz: float = 0.7


# Partial ratios of a struck bowl / free bar: ~1, 2.76, 5.40, 8.93.
BELLS: dict[str, BellDesign] = {
    "bell": BellDesign(
        strikes=(Strike(0.0, 293.66, 1.0),),
        partials=((1.0, 1.0, 7.0), (2.76, 0.42, 3.6), (5.40, 0.16, 1.8), (8.93, 0.06, 0.9)),
        seconds=6.0,
        attack=0.004,
        release=0.4,
        peak=0.5,
    ),
    "soft-bell": BellDesign(
        strikes=(Strike(0.0, 220.0, 1.0),),
        partials=((1.0, 1.0, 6.0), (2.76, 0.28, 3.0), (5.40, 0.08, 1.4), (8.93, 0.02, 0.7)),
        seconds=5.0,
        attack=0.025,
        release=0.4,
        peak=0.4,
        beat_hz=0.5,
    ),
    "chime": BellDesign(
        strikes=(Strike(0.0, 587.33, 1.0), Strike(0.22, 880.0, 0.8), Strike(0.44, 739.99, 0.9)),
        partials=((1.0, 1.0, 3.5), (2.76, 0.22, 1.5), (5.40, 0.06, 0.7)),
        seconds=4.0,
        attack=0.003,
        release=0.3,
        peak=0.38,  # higher notes sound louder: this matches the bells' loudness
        beat_hz=1.1,
    ),
}


def _sine(freq: float, frames: int, sample_rate: int, block: int = 4096) -> np.ndarray:
    """sin(2 pi freq n / sample_rate) for n < frames, float32, exact to about 1e-7.

    Each block's first phase is found in float64; the steps inside a block come from
    two small tables, as sin(a + b) = sin a cos b + cos a sin b. About ten times
    faster than float64's sine over the whole clip, and a session that opens with
    a bell waits for its bell to be made.
    """
    step = 2 * np.pi * freq / sample_rate
    within = np.arange(block) * step
    cos_within = np.cos(within).astype(np.float32)
    sin_within = np.sin(within).astype(np.float32)
    first = np.mod(np.arange(-(-frames // block)) * (block * step), 2 * np.pi)[:, None]
    out = np.sin(first).astype(np.float32) * cos_within + np.cos(first).astype(np.float32) * sin_within
    return out.reshape(-1)[:frames]


def bell(name: str, *, sample_rate: int) -> np.ndarray:
    """The built-in cue sound `name` (a key of BELLS): float32 (frames,), peak = design's."""
    design = BELLS[name]
    sr = sample_rate
    total = round(design.seconds * sr)
    out = np.zeros(total, dtype=np.float64)
    attack = max(1, round(design.attack * sr))
    for strike in design.strikes:
        begin = round(strike.delay * sr)
        t = np.arange(total - begin) / sr
        t32 = t.astype(np.float32)
        note = np.zeros(len(t), dtype=np.float32)
        for ratio, amplitude, t60 in design.partials:
            freq = strike.fundamental * ratio
            if freq >= 0.45 * sr:
                continue
            decay = np.exp(np.float32(-_LN_1000 / t60) * t32)
            # Two sines a fraction of a hertz apart: the slow beating of real metal,
            # as sin(a) + sin(b) = 2 sin((a + b) / 2) cos((a - b) / 2).
            split = design.beat_hz * ratio**0.5 / 2
            beat = np.cos(np.float32(2 * np.pi * split) * t32)  # a few turns: float32 holds them
            note += np.float32(amplitude) * _sine(freq, len(t), sr) * beat * decay
        note[:attack] *= raised_cosine(attack)
        out[begin:] += strike.amplitude * note
    release = round(design.release * sr)
    out = fade_edges(out, fade_in=0, fade_out=release).astype(np.float64)
    out *= design.peak / np.max(np.abs(out))
    return out.astype(np.float32)


# ---------------------------------------------------------------------------
# Breathing cue tones


def tone_amplitude() -> float:
    """Peak of the tone's waveform that gives TONE_RMS_DBFS over its sustained part."""
    harmonics = (1.0, 0.12, 0.04)
    rms = np.sqrt(sum(h * h for h in harmonics) / 2)
    return float(10 ** (TONE_RMS_DBFS / 20) / rms)


def breath_tone(
    kind: str, frames: int, *, sample_rate: int, offset: int = 0, count: int | None = None
) -> np.ndarray:
    """Samples [offset, offset + count) of the cue tone of a `frames`-long breathing phase.

    An inhale glides up from TONE_LOW_HZ to TONE_HIGH_HZ, an exhale back down,
    both exponentially (evenly in pitch) and with raised-cosine edges of 150 ms
    (less on very short phases), so the tone starts and ends at exactly zero.
    The phase of the glide has a closed form, so any part can be computed on
    its own: a long phase never has to be held in memory whole. For
    bit-identical results, callers ask for the same pieces (see TONE_CHUNK).
    """
    if kind not in ("inhale", "exhale"):
        raise ValueError(f"breath tone kind must be 'inhale' or 'exhale', not {kind!r}")
    count = frames - offset if count is None else count
    count = max(0, min(count, frames - offset))
    if count == 0:
        return np.zeros(0, dtype=np.float32)
    sr = sample_rate
    low, high = TONE_LOW_HZ, TONE_HIGH_HZ
    f0, f1 = (low, high) if kind == "inhale" else (high, low)
    duration = frames / sr
    n = np.arange(offset, offset + count, dtype=np.float64)
    t = n / sr
    log_ratio = np.log(f1 / f0)
    # Integral of 2*pi*f0*(f1/f0)**(t/T): the exact phase of an exponential glide.
    phase = 2 * np.pi * f0 * duration / log_ratio * np.expm1(log_ratio * t / duration)
    wave = np.sin(phase) + 0.12 * np.sin(2 * phase) + 0.04 * np.sin(3 * phase)
    edge = min(round(TONE_EDGE_SECONDS * sr), frames // 4)
    envelope = np.ones(count)
    if edge > 0:
        rise = n < edge
        envelope[rise] = 0.5 - 0.5 * np.cos(np.pi * n[rise] / edge)
        fall = n >= frames - edge
        envelope[fall] = 0.5 - 0.5 * np.cos(np.pi * (frames - 1 - n[fall]) / edge)
    return (tone_amplitude() * envelope * wave).astype(np.float32)


# ---------------------------------------------------------------------------
# Ambience beds


def bed_rng(name: str, seed: int) -> np.random.Generator:
    """A generator for one bed: stable across runs and Python versions (no hash())."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _shaped_noise(rng: np.random.Generator, frames: int, sr: int, gain) -> np.ndarray:
    """White noise filtered circularly by `gain(freqs)`: periodic in `frames`."""
    spectrum = np.fft.rfft(rng.standard_normal(frames))
    freqs = np.fft.rfftfreq(frames, 1 / sr)
    spectrum *= gain(freqs)
    spectrum[0] = 0.0  # no DC: a bed should never push the speaker cone off centre
    return np.fft.irfft(spectrum, n=frames)


def _pink(freqs: np.ndarray) -> np.ndarray:
    return 1 / np.sqrt(np.maximum(freqs, 20.0))


def _brown(freqs: np.ndarray) -> np.ndarray:
    # 1/f amplitude (-6 dB/octave) like a leaky integrator, with the rumble under
    # 20 Hz taken out: it only costs headroom.
    highpass = (freqs / 20.0) ** 2 / (1 + (freqs / 20.0) ** 2)
    return highpass / np.maximum(freqs, 30.0)


def _rain(rng: np.random.Generator, frames: int, sr: int) -> np.ndarray:
    """Soft rain: a bandlimited hiss that swells slowly, and sparse soft droplets."""

    def hiss_shape(freqs: np.ndarray) -> np.ndarray:
        low = (freqs / 400.0) ** 2 / (1 + (freqs / 400.0) ** 2)
        high = 1 / (1 + (freqs / 5000.0) ** 4)
        return low * high / np.sqrt(np.maximum(freqs, 400.0))

    hiss = _shaped_noise(rng, frames, sr, hiss_shape)
    hiss /= np.std(hiss)
    # Slow gusts: noise under 0.15 Hz, periodic in the loop like everything else.
    gusts = _shaped_noise(rng, frames, sr, lambda f: (f > 0) & (f < 0.15))
    gusts /= np.max(np.abs(gusts)) or 1.0
    out = hiss * (1 + 0.25 * gusts)

    drop_len = round(0.06 * sr)
    t = np.arange(drop_len) / sr
    count = int(5.0 * frames / sr)  # about five soft drops a second
    starts = rng.integers(0, frames, count)
    freqs = rng.uniform(1800, 4500, count)
    decays = rng.uniform(0.008, 0.025, count)
    levels = rng.uniform(0.3, 1.5, count) ** 2
    drops = np.zeros(frames)
    attack = raised_cosine(max(1, round(0.002 * sr)))
    for start, freq, decay, level in zip(starts, freqs, decays, levels, strict=True):
        # A falling blip: the pitch of a water drop sinks as its bubble rings.
        sweep = freq * np.exp(-t / 0.04)
        drop = np.sin(2 * np.pi * np.cumsum(sweep) / sr) * np.exp(-t / decay)
        drop[: len(attack)] *= attack
        # Wrap round the loop's end, so the loop stays periodic.
        np.add.at(drops, (start + np.arange(drop_len)) % frames, level * drop)
    return out + 1.2 * drops


def _drone(rng: np.random.Generator, frames: int, sr: int) -> np.ndarray:
    """Low drone: a few low sines beating slowly against each other, over a little air."""
    seconds = frames / sr
    t = np.arange(frames) / sr
    out = np.zeros(frames)

    def whole(freq: float) -> float:  # a whole number of cycles in the loop
        return max(1, round(freq * seconds)) / seconds

    # (Hz, level, detune Hz of its partner): a root, fifth and octave on A1.
    for freq, level, detune in ((55.0, 1.0, 0.13), (82.5, 0.6, 0.2), (110.0, 0.45, 0.1)):
        phase_a, phase_b = rng.uniform(0, 2 * np.pi, 2)
        out += level * np.sin(2 * np.pi * whole(freq) * t + phase_a)
        out += level * 0.8 * np.sin(2 * np.pi * whole(freq + detune) * t + phase_b)
    swell = 1 + 0.2 * np.sin(2 * np.pi * whole(1 / 15) * t)  # a slow breath in the drone
    air = _shaped_noise(rng, frames, sr, lambda f: _pink(f) / (1 + (f / 1200.0) ** 2))
    air *= 0.05 * np.std(out) / (np.std(air) or 1.0)
    return out * swell + air


def bed_loop(
    name: str, *, sample_rate: int, seed: int, seconds: float = LOOP_SECONDS
) -> np.ndarray:
    """One loop of the built-in bed `name`: float32 (frames,), periodic, not yet normalised."""
    sr = sample_rate
    frames = round(seconds * sr)
    rng = bed_rng(name, seed)
    if name == "white-noise":
        loop = rng.standard_normal(frames)
    elif name == "pink-noise":
        loop = _shaped_noise(rng, frames, sr, _pink)
    elif name == "brown-noise":
        loop = _shaped_noise(rng, frames, sr, _brown)
    elif name == "soft-rain":
        loop = _rain(rng, frames, sr)
    elif name == "low-drone":
        loop = _drone(rng, frames, sr)
    else:
        raise KeyError(name)
    return loop.astype(np.float32)


def normalise_bed(samples: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """Scale a bed to BED_LUFS (K-weighted, so `level` sounds alike for every bed),
    then down if needed so it never peaks above BED_PEAK."""
    from prtvoice.loudness import LoudnessMeter

    data = samples.astype(np.float64)
    # The meter needs at least one 400 ms block; repeat a short loop to get one.
    probe = data
    minimum = round(0.5 * sample_rate)
    if len(probe) < minimum:
        probe = np.tile(probe, -(-minimum // max(1, len(probe))))
    meter = LoudnessMeter(sample_rate=sample_rate)
    meter.add(probe)
    loudness = meter.integrated()
    if not np.isfinite(loudness):
        return samples.astype(np.float32)  # digital silence stays silence
    gain = 10 ** ((BED_LUFS - loudness) / 20)
    peak = np.max(np.abs(data)) * gain
    if peak > BED_PEAK:
        gain *= BED_PEAK / peak
    return (data * gain).astype(np.float32)


def crossfade_loop(samples: np.ndarray, *, sample_rate: int, seconds: float = 2.0) -> np.ndarray:
    """A recording made loopable: its tail crossfaded (equal power) into its head.

    The result is shorter by the crossfade and periodic: its last sample runs
    on into its first as the recording ran on from that point. For uncorrelated
    material (rain, noise) equal power keeps the level steady through the fade.
    """
    n = len(samples)
    fade = min(round(seconds * sample_rate), n // 3)
    if fade < 2:
        return samples.astype(np.float32, copy=True)
    x = samples.astype(np.float64)
    loop = x[: n - fade].copy()
    theta = 0.5 * np.pi * (np.arange(fade) + 0.5) / fade
    loop[:fade] = x[n - fade :] * np.cos(theta) + x[:fade] * np.sin(theta)
    return loop.astype(np.float32)
