"""prtvoice.filters against the scipy functions they stand in for, to float rounding."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
import scipy.ndimage
import scipy.signal

from prtvoice.filters import KWeighting, k_weighting_stages, lowpass_taps, sliding_min, upsample


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_k_weighting_coefficients_are_pyloudnorms(rate):
    ours = k_weighting_stages(rate)
    theirs = [
        (np.asarray(f.b) / f.a[0], np.asarray(f.a) / f.a[0])
        for f in pyloudnorm.Meter(rate)._filters.values()
    ]
    for (b, a), (tb, ta) in zip(ours, theirs):
        np.testing.assert_allclose(b, tb, rtol=1e-12)
        np.testing.assert_allclose(a, ta, rtol=1e-12)


@pytest.mark.parametrize("rate", [22050, 44100])
def test_k_weighting_streams_exactly_like_sosfilt_whatever_the_blocks(rate):
    rng = np.random.default_rng(rate)
    # Speech-like: bursts of noise and tones between stretches of digital silence.
    x = np.zeros(rate * 8)
    for start in rng.integers(0, len(x) - rate, 12):
        n = int(rng.integers(100, rate))
        x[start : start + n] += rng.standard_normal(n) * rng.uniform(0.01, 0.5)
    sos = np.array([np.concatenate([b, a]) for b, a in k_weighting_stages(rate)])
    reference = scipy.signal.sosfilt(sos, x)
    for sizes in ([len(x)], [1, 2, 3, 63, 64, 65, 4095, 4096, 4097, 9000], [777] * 400):
        weighting, out, at = KWeighting(rate), [], 0
        for size in sizes * (len(x) // sum(sizes) + 1):
            if at >= len(x):
                break
            out.append(weighting.process(x[at : at + size]))
            at += size
        got = np.concatenate(out)
        # FFT rounding, carried on a while by the filter: ~1e-10 of the peak (loudness
        # ~1e-9 dB off), where sosfilt has ~1e-16.
        assert np.abs(got - reference).max() <= 1e-9 * np.abs(reference).max()


def test_k_weighting_settles_after_silence():
    weighting = KWeighting(22050)
    weighting.process(np.random.default_rng(1).standard_normal(1000))
    assert not weighting.settled()
    weighting.process(np.zeros(22050 * 3))
    assert weighting.settled()


@pytest.mark.parametrize(("numtaps", "cutoff", "beta"), [(81, 0.25, 5.0), (31, 0.5, 8.6), (8, 0.3, 2.0)])
def test_lowpass_taps_are_firwins(numtaps, cutoff, beta):
    expected = scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta))
    np.testing.assert_allclose(lowpass_taps(numtaps, cutoff, beta=beta), expected, atol=1e-15)


@pytest.mark.parametrize("length", [1, 2, 50, 1000])
def test_upsample_is_upfirdn(length):
    rng = np.random.default_rng(length)
    x, taps = rng.standard_normal(length), rng.standard_normal(81)
    np.testing.assert_allclose(upsample(taps, x, 4), scipy.signal.upfirdn(taps, x, 4), atol=1e-12)


@pytest.mark.parametrize("size", [1, 3, 11, 1323])
@pytest.mark.parametrize("length", [1, 5, 1322, 1323, 5000])
def test_sliding_min_is_minimum_filter1d_nearest(size, length):
    x = np.random.default_rng(size * length).uniform(0.0, 1.0, length)
    x[::7] = 1.0  # runs of equal values, as a limiter's needs have
    expected = scipy.ndimage.minimum_filter1d(x, size=size, mode="nearest")
    np.testing.assert_array_equal(sliding_min(x, size), expected)


def test_sliding_min_takes_odd_sizes_only():
    with pytest.raises(ValueError, match="odd"):
        sliding_min(np.zeros(4), 4)
