"""Generated sounds and the sound bank: bells, breathing tones, ambience beds, files."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from prtvoice import synth
from prtvoice.errors import SoundError
from prtvoice.names import AMBIENCE_BEDS, CUE_SOUNDS
from prtvoice.script import SoundRef
from prtvoice.sounds import FILE_PEAK, Bed, SoundBank

SR = 44100


@pytest.fixture(scope="module")
def bank() -> SoundBank:
    # One bank for the module: beds take a fraction of a second each to make.
    return SoundBank(sample_rate=SR, seed=0)


def spectrum_peak(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    """Frequency (Hz) of the strongest bin between lo and hi."""
    window = np.hanning(len(x))
    mags = np.abs(np.fft.rfft(x * window))
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    band = (freqs >= lo) & (freqs <= hi)
    return float(freqs[band][np.argmax(mags[band])])


def band_power(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    return float(power[(freqs >= lo) & (freqs < hi)].sum())


def zero_crossing_hz(x: np.ndarray, sr: int) -> float:
    crossings = np.count_nonzero(np.diff(np.signbit(x)))
    return crossings / 2 / (len(x) / sr)


# ---------------------------------------------------------------------------
# Cue sounds


@pytest.mark.parametrize("name", CUE_SOUNDS)
def test_cue_sound_contract_and_edges(bank, name):
    clip = bank.clip(SoundRef(name))
    assert clip.dtype == np.float32 and clip.ndim == 2 and clip.shape[1] == 1
    assert bank.frames(SoundRef(name)) == len(clip)
    x = clip[:, 0]
    peak = np.max(np.abs(x))
    assert 0.3 <= peak <= 0.6  # under speech (peaks 0.5-0.9), never near clipping
    # No click: starts and ends on silence, and the first milliseconds only rise gently.
    assert x[0] == 0.0 and abs(x[-1]) < 1e-6
    assert np.max(np.abs(x[-200:])) < 1e-3
    assert np.max(np.abs(np.diff(x[: SR // 1000]))) < 0.05
    # Natural decay: the last half second is far quieter than the first.
    head = np.sqrt(np.mean(x[: SR // 2] ** 2))
    tail = np.sqrt(np.mean(x[-SR // 2 :] ** 2))
    assert 20 * np.log10(tail / head) < -30


def test_bell_is_a_struck_bowl_with_inharmonic_partials():
    x = synth.bell("bell", sample_rate=SR)[: SR * 2].astype(np.float64)
    design = synth.BELLS["bell"]
    f0 = design.strikes[0].fundamental
    assert abs(spectrum_peak(x, SR, 100, 1000) - f0) < 2
    # The second partial sits at ~2.76 x f0, not at a harmonic 2 or 3 x f0.
    assert abs(spectrum_peak(x, SR, 2.3 * f0, 3.2 * f0) - 2.76 * f0) < 4


def test_soft_bell_has_the_gentler_attack():
    def rise_time(x: np.ndarray) -> int:
        return int(np.argmax(np.abs(x) > 0.5 * np.max(np.abs(x))))

    assert rise_time(synth.bell("soft-bell", sample_rate=SR)) > rise_time(
        synth.bell("bell", sample_rate=SR)
    )


def test_chime_strikes_three_notes():
    design = synth.BELLS["chime"]
    x = synth.bell("chime", sample_rate=SR).astype(np.float64)
    for strike in design.strikes:
        at = round(strike.delay * SR)
        window = x[at + SR // 20 : at + SR // 20 + SR // 5]
        # Each note's pitch is present shortly after its strike.
        power = band_power(window, SR, strike.fundamental - 15, strike.fundamental + 15)
        assert power / band_power(window, SR, 20, 20000) > 0.05


def test_unknown_sound_names_the_close_match(bank):
    with pytest.raises(SoundError, match="did you mean 'chime'"):
        bank.clip(SoundRef("chmie"))
    with pytest.raises(SoundError, match="unknown built-in sound"):
        bank.bed(SoundRef("thunder"))


def test_a_bed_used_as_a_cue_sound_is_a_faded_excerpt(bank):
    x = bank.clip(SoundRef("pink-noise"))[:, 0]
    assert len(x) == round(8.0 * SR) and x[0] == 0.0 and abs(x[-1]) < 1e-6
    assert np.max(np.abs(x)) < 0.5


# ---------------------------------------------------------------------------
# Breathing tones


@pytest.mark.parametrize(("kind", "rises"), [("inhale", True), ("exhale", False)])
def test_breath_tone_glides_quietly_with_smooth_edges(bank, kind, rises):
    frames = 4 * SR + 17
    tone = bank.breath_tone(kind, frames)
    assert tone.shape == (frames, 1) and tone.dtype == np.float32
    x = tone[:, 0].astype(np.float64)
    start_hz = zero_crossing_hz(x[int(0.2 * SR) : int(0.7 * SR)], SR)
    end_hz = zero_crossing_hz(x[-int(0.7 * SR) : -int(0.2 * SR)], SR)
    low, high = sorted((start_hz, end_hz))
    assert (start_hz < end_hz) == rises
    assert 190 < low < 215 and 270 < high < 300  # ~G3 to ~D4
    middle = x[SR : 3 * SR]
    assert abs(20 * np.log10(np.sqrt(np.mean(middle**2))) - synth.TONE_RMS_DBFS) < 0.5
    assert x[0] == 0.0 and x[-1] == 0.0
    # 150 ms raised-cosine edges: nothing abrupt near the ends.
    assert np.max(np.abs(x[:200])) < 1e-3 and np.max(np.abs(x[-200:])) < 1e-3


def test_breath_tone_is_the_same_in_any_pieces(bank):
    frames = 3 * synth.TONE_CHUNK + 123
    whole = bank.breath_tone("exhale", frames)[:, 0]
    direct = synth.breath_tone("exhale", frames, sample_rate=SR)
    np.testing.assert_allclose(whole, direct, atol=1e-6)
    chunks = [bank.breath_tone_chunk("exhale", frames, i) for i in range(4)]
    assert np.array_equal(np.concatenate(chunks), whole)
    assert len(chunks[-1]) == 123


def test_breath_tone_of_a_very_short_phase_is_still_silent_at_its_edges(bank):
    x = bank.breath_tone("inhale", 40)[:, 0]
    assert len(x) == 40 and x[0] == 0.0 and x[-1] == 0.0
    with pytest.raises(ValueError):
        bank.breath_tone("hold", 100)


# ---------------------------------------------------------------------------
# Ambience beds


@pytest.mark.parametrize("name", AMBIENCE_BEDS)
def test_bed_loops_seamlessly_at_a_standard_loudness(bank, name):
    import pyloudnorm

    bed = bank.bed(SoundRef(name))
    size = bed.loop_frames
    assert size == round(synth.LOOP_SECONDS * SR)
    loop = bed.block(0, size)[:, 0].astype(np.float64)
    # Across the loop point the signal steps no more than it does anywhere else.
    steps = np.abs(np.diff(loop))
    assert abs(loop[0] - loop[-1]) <= np.percentile(steps, 99.9)
    across = bed.block(size - 1000, 2000)[:, 0]
    assert np.array_equal(across, np.concatenate([loop[-1000:], loop[:1000]]).astype(np.float32))

    # A click would show as a burst of high-frequency energy at the seam.
    def hf(x):
        return np.sqrt(np.mean(np.diff(x, 2) ** 2))

    seam = hf(across.astype(np.float64)[900:1100])
    typical = np.median([hf(loop[i : i + 200]) for i in range(0, size - 200, size // 50)])
    assert seam < 3 * typical
    # Normalised: `ambience.level` means the same for every bed.
    loudness = pyloudnorm.Meter(SR).integrated_loudness(loop)
    assert synth.BED_LUFS - 4 < loudness < synth.BED_LUFS + 0.5
    assert np.max(np.abs(loop)) <= synth.BED_PEAK + 1e-6


def test_bed_block_is_a_pure_function_of_position(bank):
    bed = bank.bed(SoundRef("soft-rain"))
    size = bed.loop_frames
    a = bed.block(12345, 5000)
    b = bed.block(12345 + 7 * size, 5000)
    assert np.array_equal(a, b)
    long = bed.block(size - 10, 2 * size + 20)  # longer than the loop: keeps going round
    assert np.array_equal(long[10 : 10 + size], bed.block(0, size))
    assert long.shape == (2 * size + 20, 1)


def test_beds_are_seeded(bank):
    again = SoundBank(sample_rate=SR, seed=0).bed(SoundRef("pink-noise")).block(0, 4096)
    assert np.array_equal(bank.bed(SoundRef("pink-noise")).block(0, 4096), again)
    other = SoundBank(sample_rate=SR, seed=1).bed(SoundRef("pink-noise")).block(0, 4096)
    assert not np.array_equal(again, other)


def test_noise_colours_have_their_slopes(bank):
    def per_octave(name: str) -> float:
        x = bank.bed(SoundRef(name)).block(0, 10 * SR)[:, 0].astype(np.float64)
        low = band_power(x, SR, 200, 400)
        high = band_power(x, SR, 3200, 6400)
        return 10 * np.log10(high / low) / 4  # dB per octave over four octaves

    assert abs(per_octave("white-noise") - 3.0) < 0.5  # equal power per hertz
    assert abs(per_octave("pink-noise") - 0.0) < 0.5  # equal power per octave
    assert abs(per_octave("brown-noise") + 3.0) < 0.5  # falling 6 dB/octave in amplitude


def test_drone_is_low_and_rain_has_droplets(bank):
    drone = bank.bed(SoundRef("low-drone")).block(0, 10 * SR)[:, 0].astype(np.float64)
    assert band_power(drone, SR, 40, 130) / band_power(drone, SR, 20, 20000) > 0.9
    rain = bank.bed(SoundRef("soft-rain")).block(0, 10 * SR)[:, 0].astype(np.float64)
    assert band_power(rain, SR, 20, 200) / band_power(rain, SR, 20, 20000) < 0.02
    # Droplets make the rain sparse and peaky, unlike plain noise (crest factor > 3.5).
    assert np.max(np.abs(rain)) / np.sqrt(np.mean(rain**2)) > 3.5


def test_bed_rejects_bad_positions():
    bed = Bed(np.ones(10, dtype=np.float32), name="x")
    with pytest.raises(ValueError):
        bed.block(-1, 5)


# ---------------------------------------------------------------------------
# Files


def make_sine(path, *, freq: float, rate: int, seconds: float, volume: float = 0.5) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"sine=frequency={freq}:sample_rate={rate}:duration={seconds}",
         "-af", f"volume={volume}", str(path)],
        check=True,
    )  # fmt: skip


def test_file_sound_is_decoded_resampled_and_faded(tmp_path):
    path = tmp_path / "ding.ogg"
    make_sine(path, freq=1000, rate=22050, seconds=1.5)
    bank = SoundBank(sample_rate=SR)
    ref = SoundRef("ding.ogg", path)
    clip = bank.clip(ref)
    assert bank.frames(ref) == len(clip)
    assert abs(len(clip) - round(1.5 * SR)) <= 4
    x = clip[:, 0].astype(np.float64)
    assert x[0] == 0.0 and abs(x[-1]) < 1e-6
    assert abs(spectrum_peak(x, SR, 100, 10000) - 1000) < 2


def test_a_loud_file_is_turned_down_never_up(tmp_path):
    loud, quiet = tmp_path / "loud.wav", tmp_path / "quiet.wav"
    make_sine(loud, freq=440, rate=SR, seconds=0.5, volume=10.0)  # lavfi sines are 1/8: clips
    make_sine(quiet, freq=440, rate=SR, seconds=0.5, volume=0.5)
    bank = SoundBank(sample_rate=SR)
    assert np.max(np.abs(bank.clip(SoundRef("l", loud)))) == pytest.approx(FILE_PEAK, rel=1e-4)
    assert np.max(np.abs(bank.clip(SoundRef("q", quiet)))) < 0.1


def test_a_file_bed_is_crossfaded_into_a_seamless_loop(tmp_path):
    path = tmp_path / "rain.flac"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
         "-i", "anoisesrc=color=pink:sample_rate=48000:duration=6:seed=3", str(path)],
        check=True,
    )  # fmt: skip
    bed = SoundBank(sample_rate=SR).bed(SoundRef("rain.flac", path))
    assert bed.loop_frames == round(6 * SR) - round(2 * SR)
    loop = bed.block(0, bed.loop_frames)[:, 0].astype(np.float64)
    steps = np.abs(np.diff(loop))
    assert abs(loop[0] - loop[-1]) <= np.percentile(steps, 99.9)
    # Equal-power crossfade: no dip in level through the fade (uncorrelated noise).
    fade_rms = np.sqrt(np.mean(loop[: 2 * SR] ** 2))
    rest_rms = np.sqrt(np.mean(loop[2 * SR :] ** 2))
    assert abs(20 * np.log10(fade_rms / rest_rms)) < 1.0


def test_a_corrupt_file_is_a_sound_error_naming_it(tmp_path):
    path = tmp_path / "broken.mp3"
    path.write_bytes(b"ID3\x00not really an mp3" * 20)
    with pytest.raises(SoundError, match=r"broken\.mp3"):
        SoundBank(sample_rate=SR).clip(SoundRef("broken.mp3", path))


def test_a_too_long_file_is_refused(tmp_path):
    path = tmp_path / "long.wav"
    make_sine(path, freq=440, rate=8000, seconds=5)
    with pytest.raises(SoundError, match="longer than 2 s"):
        SoundBank(sample_rate=SR, max_file_seconds=2).clip(SoundRef("long.wav", path))


@pytest.mark.parametrize(("freq", "frames"), [(220.0, 1), (607.53, 4097), (1965.3, 5 * SR + 11)])
def test_bell_sines_are_float64_sines_to_float32_rounding(freq, frames):
    # The bells' partials come from block tables (float32, ~10x faster); they must
    # still be the sine itself, the phase carried exactly from block to block.
    got = synth._sine(freq, frames, SR)
    exact = np.sin(2 * np.pi * freq * np.arange(frames) / SR)
    assert got.dtype == np.float32 and len(got) == frames
    assert np.abs(got - exact).max() < 1e-6
