"""The streaming meters against pyloudnorm / whole-signal oversampling, and the limiter."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
import scipy.signal

from prtvoice.loudness import LoudnessMeter, PeakLimiter, StreamMeter, TruePeakMeter, to_db

SR = 44100


def speechlike(seconds: float, *, seed: int = 1, silence: float = 2.0) -> np.ndarray:
    """Voiced bursts of 1.5 s with `silence` s gaps, like guided speech."""
    rng = np.random.default_rng(seed)
    out = []
    t = np.arange(int(1.5 * SR)) / SR
    while sum(len(x) for x in out) < seconds * SR:
        f0 = 120 + 60 * rng.random()
        burst = (
            0.4 * np.sin(2 * np.pi * f0 * t)
            + 0.15 * np.sin(2 * np.pi * 3 * f0 * t)
            + 0.03 * rng.standard_normal(len(t))
        ) * np.sin(np.pi * t / 1.5)
        out += [burst, np.zeros(int(silence * SR))]
    return np.concatenate(out)[: int(seconds * SR)].astype(np.float32)


def feed(meter, x: np.ndarray, size: int):
    for i in range(0, len(x), size):
        meter.add(x[i : i + size].reshape(-1, 1))
    return meter


@pytest.mark.parametrize("seconds,silence", [(5.0, 0.5), (20.0, 2.0), (12.3, 6.0)])
def test_integrated_loudness_matches_pyloudnorm(seconds, silence):
    x = speechlike(seconds, silence=silence)
    reference = pyloudnorm.Meter(SR).integrated_loudness(x.astype(np.float64))
    ours = feed(LoudnessMeter(sample_rate=SR), x, 8192).integrated()
    assert ours == pytest.approx(reference, abs=0.1)


def test_block_size_does_not_change_the_measurement():
    x = speechlike(10.0)
    a = feed(StreamMeter(sample_rate=SR), x, 8192).result()
    b = feed(StreamMeter(sample_rate=SR), x, 997).result()
    assert a.loudness_lufs == pytest.approx(b.loudness_lufs, abs=1e-9)
    assert a.true_peak_db == pytest.approx(b.true_peak_db, abs=1e-9)


def test_gating_ignores_long_silences_where_plain_rms_does_not():
    x = speechlike(10.0, silence=0.5)
    padded = np.concatenate([x, np.zeros(60 * SR, dtype=np.float32)])
    short = feed(LoudnessMeter(sample_rate=SR), x, 8192).integrated()
    long = feed(LoudnessMeter(sample_rate=SR), padded, 8192).integrated()
    assert long == pytest.approx(short, abs=0.01)
    rms_drop = 20 * np.log10(np.sqrt(np.mean(padded**2.0)) / np.sqrt(np.mean(x**2.0)))
    assert rms_drop < -6  # what an RMS normaliser would have made up for


def test_silence_reads_minus_infinity():
    assert feed(LoudnessMeter(sample_rate=SR), np.zeros(SR, np.float32), 4096).integrated() == (
        -np.inf
    )


def test_true_peak_equals_whole_signal_oversampling_and_beats_sample_peak():
    # A quarter-rate sine sampled at 45 degrees: every sample is 0.707 of the real peak.
    n = np.arange(SR)
    x = (0.5 * np.sin(2 * np.pi * n / 4 + np.pi / 4)).astype(np.float32)
    x[:1000] = 0
    meter = TruePeakMeter()
    for i in range(0, len(x), 3001):
        meter.add(x[i : i + 3001])
    peak = meter.finish()
    whole = np.abs(scipy.signal.resample_poly(x.astype(np.float64), 4, 1)).max()
    assert peak == pytest.approx(whole, rel=1e-9)
    assert to_db(peak) > to_db(meter.sample_peak) + 2.5


def test_true_peak_on_a_sample_itself_equals_whole_signal_oversampling():
    # A lone click: its largest oversampled value is the sample's own (phase 0,
    # which the meter takes from the centre tap instead of convolving).
    x = np.zeros(SR, dtype=np.float32)
    x[5000], x[9000:9003] = 0.9, (0.2, -0.3, 0.25)
    meter = TruePeakMeter()
    meter.add(x)
    whole = np.abs(scipy.signal.resample_poly(x.astype(np.float64), 4, 1))
    assert int(whole.argmax()) == 4 * 5000  # on the sample: phase 0
    assert meter.finish() == pytest.approx(whole.max(), rel=1e-12)


@pytest.mark.parametrize("block", [1, 37, 300, 8192])
def test_true_peak_skips_quiet_chunks_yet_equals_whole_signal_oversampling(block):
    # Bursts of every level, a loud one late and one right at the end: the meter
    # oversamples only chunks that could raise the peak, and must still find it.
    rng = np.random.default_rng(7)
    x = np.zeros(3 * SR)
    for start, level in [(0, 0.01), (5000, 0.06), (40000, 0.04), (90000, 0.1), (3 * SR - 40, 0.08)]:
        burst = rng.standard_normal(min(3000, len(x) - start)) * level
        x[start : start + len(burst)] = burst
    # A lone click, then a quarter-rate sine whose samples (0.35) all sit below the
    # click (0.45) while its true peak (0.5) lies between them: found only by oversampling.
    x[20000] = 0.45
    n = np.arange(3000)
    x[30000:33000] = 0.5 * np.sin(2 * np.pi * n / 4 + np.pi / 4)
    x = x.astype(np.float32)
    meter = TruePeakMeter()
    for i in range(0, len(x), block):
        meter.add(x[i : i + block])
    whole = np.abs(scipy.signal.resample_poly(x.astype(np.float64), 4, 1)).max()
    assert meter.finish() == pytest.approx(whole, rel=1e-12)
    assert meter.sample_peak == pytest.approx(float(np.abs(x).max()), rel=1e-12)


def test_limiter_holds_the_ceiling_keeps_length_and_ignores_blocking():
    x = speechlike(8.0) * 2.0  # peaks near 1.1
    ceiling = 0.5

    def run(size):
        limiter = PeakLimiter(ceiling=ceiling, sample_rate=SR)
        parts = [limiter.process(x[i : i + size]) for i in range(0, len(x), size)]
        return np.concatenate([*parts, limiter.finish()])[:, 0], limiter

    y, limiter = run(8192)
    y2, _ = run(613)
    assert len(y) == len(x)
    assert np.abs(y).max() <= ceiling + 1e-6
    assert np.allclose(y, y2, atol=1e-6)  # equal up to float rounding in the running sums
    assert limiter.reduced_frames > 0
    # Quiet parts pass unchanged (after the look-ahead delay has been undone).
    quiet = np.abs(x) < 0.05
    assert np.allclose(y[quiet][:1000], x[quiet][:1000], atol=0.05)


def test_limiter_is_transparent_below_the_ceiling():
    x = speechlike(3.0)
    limiter = PeakLimiter(ceiling=0.99, sample_rate=SR)
    y = np.concatenate([limiter.process(x), limiter.finish()])[:, 0]
    assert np.array_equal(y, x)
    assert limiter.reduced_frames == 0


def test_limiter_leaves_a_peak_at_the_ceiling_and_turns_down_one_just_over_it():
    ceiling = 0.5
    at = np.zeros(SR, dtype=np.float32)
    at[1000] = ceiling  # exactly at the ceiling: needs nothing
    limiter = PeakLimiter(ceiling=ceiling, sample_rate=SR)
    y = np.concatenate([limiter.process(at), limiter.finish()])[:, 0]
    assert np.array_equal(y, at) and limiter.reduced_frames == 0
    over = at.copy()
    over[1000] = np.nextafter(np.float32(ceiling), np.float32(1.0))  # one step over
    limiter = PeakLimiter(ceiling=ceiling, sample_rate=SR)
    y = np.concatenate([limiter.process(over[:700]), limiter.process(over[700:]), limiter.finish()])
    assert limiter.reduced_frames > 0
    assert np.abs(y).max() <= ceiling


def test_the_background_meter_measures_what_the_stream_meter_does():
    from prtvoice.loudness import BackgroundMeter, StreamMeter

    rng = np.random.default_rng(7)
    blocks = [
        (rng.standard_normal((n, 1)) * 0.1 * (i % 3)).astype(np.float32)
        for i, n in enumerate(rng.integers(1, 9000, 60))
    ]
    inline, background = StreamMeter(sample_rate=SR), BackgroundMeter(sample_rate=SR, max_blocks=4)
    for block in blocks:
        inline.add(block)
        background.add(block)
    assert background.result() == inline.result()


def test_a_cancelled_background_meter_lets_its_thread_go():
    from prtvoice.loudness import BackgroundMeter

    meter = BackgroundMeter(sample_rate=SR, max_blocks=2)
    for _ in range(5):
        meter.add(np.zeros((SR, 1), dtype=np.float32))
    meter.cancel()
    meter._thread.join(timeout=10)
    assert not meter._thread.is_alive()
    meter.add(np.zeros((10, 1), dtype=np.float32))  # after cancel: ignored, never blocks
    with pytest.raises(RuntimeError, match="cancelled"):
        meter.result()
