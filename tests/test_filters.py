"""prtvoice.filters against the scipy functions they stand in for, to float rounding."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
import scipy.ndimage
import scipy.signal
from fresh import run_fresh

from prtvoice import filters
from prtvoice.filters import (
    CompiledKWeighting,
    KWeighting,
    compiled_sosfilt,
    k_weighting,
    k_weighting_stages,
    lowpass_taps,
    sliding_min,
)


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


@pytest.mark.parametrize("compiled", [True, False], ids=["scipy-kernel", "numpy"])
@pytest.mark.parametrize("rate", [22050, 44100])
def test_k_weighting_streams_exactly_like_sosfilt_whatever_the_blocks(rate, compiled):
    rng = np.random.default_rng(rate)
    # Speech-like: bursts of noise and tones between stretches of digital silence.
    x = np.zeros(rate * 8)
    for start in rng.integers(0, len(x) - rate, 12):
        n = int(rng.integers(100, rate))
        x[start : start + n] += rng.standard_normal(n) * rng.uniform(0.01, 0.5)
    sos = np.array([np.concatenate([b, a]) for b, a in k_weighting_stages(rate)])
    reference = scipy.signal.sosfilt(sos, x)
    for sizes in ([len(x)], [1, 2, 3, 63, 64, 65, 4095, 4096, 4097, 9000], [777] * 400):
        weighting, out, at = k_weighting(rate, compiled=compiled), [], 0
        for size in sizes * (len(x) // sum(sizes) + 1):
            if at >= len(x):
                break
            out.append(weighting.process(x[at : at + size]))
            at += size
        got = np.concatenate(out)
        # FFT rounding, carried on a while by the filter: ~1e-10 of the peak (loudness
        # ~1e-9 dB off), where sosfilt has ~1e-16.
        assert np.abs(got - reference).max() <= 1e-9 * np.abs(reference).max()


@pytest.mark.parametrize("compiled", [True, False], ids=["scipy-kernel", "numpy"])
def test_k_weighting_settles_after_silence(compiled):
    weighting = k_weighting(22050, compiled=compiled)
    weighting.process(np.random.default_rng(1).standard_normal(1000))
    assert not weighting.settled()
    weighting.process(np.zeros(22050 * 3))
    assert weighting.settled()
    weighting.process(np.ones(10))
    weighting.reset()
    assert weighting.settled()
    assert not weighting.process(np.zeros(100)).any()


def test_scipys_kernel_loads_without_scipy_signal_and_is_what_meters_use():
    # The fast path is what a fresh process gets with the scipy this project
    # installs (it fails here, not silently falls back, if scipy moves it).
    code = (
        "import sys\n"
        "from prtvoice.filters import compiled_sosfilt, k_weighting\n"
        "assert compiled_sosfilt() is not None\n"
        "assert type(k_weighting(22050)).__name__ == 'CompiledKWeighting'\n"
        "assert 'scipy.signal' not in sys.modules, sorted(sys.modules)\n"
    )
    run_fresh(code)


def test_threads_asking_for_the_kernel_at_once_all_get_it():
    # A meter on its own thread and another on the main one may both be first.
    code = (
        "import threading\n"
        "from prtvoice.filters import compiled_sosfilt\n"
        "start, got = threading.Barrier(4), []\n"
        "def ask():\n"
        "    start.wait()\n"
        "    got.append(compiled_sosfilt.__wrapped__())\n"
        "threads = [threading.Thread(target=ask) for _ in range(4)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "assert len(got) == 4 and got[0] is not None, got\n"
        "assert all(k is got[0] for k in got), got\n"
    )
    run_fresh(code)


def test_a_kernel_that_answers_wrong_is_not_used(monkeypatch):
    assert filters._kernel_answers_right(compiled_sosfilt())

    def off_by_a_little(sos, x, zi):
        compiled_sosfilt()(sos, x, zi)
        x *= 1.0 + 1e-9

    def wrong_shapes(sos, x, zi):
        raise ValueError("Buffer has wrong number of dimensions")

    assert not filters._kernel_answers_right(off_by_a_little)
    monkeypatch.setattr(filters, "_kernel_answers_right", lambda kernel: False)
    assert compiled_sosfilt.__wrapped__() is None
    monkeypatch.setattr(filters, "_kernel_answers_right", wrong_shapes)
    assert compiled_sosfilt.__wrapped__() is None  # raised inside: the numpy filter then


def test_without_the_kernel_k_weighting_falls_back_to_numpy(monkeypatch):
    monkeypatch.setattr(filters, "compiled_sosfilt", lambda: None)
    assert isinstance(k_weighting(22050), KWeighting)
    with pytest.raises(ValueError, match="not available"):
        k_weighting(22050, compiled=True)
    monkeypatch.undo()
    assert isinstance(k_weighting(22050), CompiledKWeighting)
    assert isinstance(k_weighting(22050, compiled=False), KWeighting)


@pytest.mark.parametrize(
    ("numtaps", "cutoff", "beta"), [(81, 0.25, 5.0), (31, 0.5, 8.6), (8, 0.3, 2.0)]
)
def test_lowpass_taps_are_firwins(numtaps, cutoff, beta):
    expected = scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta))
    np.testing.assert_allclose(lowpass_taps(numtaps, cutoff, beta=beta), expected, atol=1e-15)


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
