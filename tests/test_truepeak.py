"""The true-peak meter: exact against whole-signal oversampling, whatever it skips."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal

from prtvoice import truepeak
from prtvoice.truepeak import CONTEXT, TruePeakMeter


def oversampled(x: np.ndarray) -> np.ndarray:
    """|4x oversampled x|, the reference (output 4s + p is sample s's phase p)."""
    return np.abs(scipy.signal.resample_poly(np.asarray(x, dtype=np.float64), 4, 1))


def speechlike(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bursts of pulses at every level with silences between, like limited speech."""
    x = np.zeros(n, dtype=np.float32)
    at = 0
    while at < n:
        length = int(rng.integers(200, 6000))
        level = float(rng.choice([0.001, 0.05, 0.3, 0.7, 0.95]))
        t = np.arange(min(length, n - at))
        pitch = rng.uniform(60, 200)
        pulses = np.sin(2 * np.pi * t / pitch) ** 15 * level  # peaky, like voiced speech
        x[at : at + len(t)] = pulses + rng.standard_normal(len(t)) * level * 0.05
        at += len(t) + int(rng.integers(0, 3000))
    return np.clip(x, -1, 1).astype(np.float32)


def feed(meter: TruePeakMeter, x: np.ndarray, sizes: list[int]) -> None:
    at, i = 0, 0
    while at < len(x):
        size = sizes[i % len(sizes)]
        meter.add(x[at : at + size])
        at, i = at + size, i + 1


@pytest.mark.parametrize("seed", range(6))
def test_equals_whole_signal_oversampling_for_any_cut(seed):
    rng = np.random.default_rng(seed)
    x = speechlike(rng, int(rng.integers(50_000, 120_000)))
    x[int(rng.integers(0, len(x)))] = -0.99  # a lone click somewhere
    meter = TruePeakMeter()
    feed(meter, x, [int(s) for s in rng.integers(1, 40_000, size=7)])
    assert meter.finish() == pytest.approx(oversampled(x).max(), rel=1e-12)
    assert meter.sample_peak == float(np.abs(x).max())


@pytest.mark.parametrize("seed", range(4))
def test_granule_bounds_hold_and_are_tight(seed):
    # Every phase 1-3 output of a granule stays within its bound, on signals of every
    # kind and on the worst cases, which reach the bound (so a bound too low fails).
    rng = np.random.default_rng(seed)
    kinds = [
        speechlike(rng, 8000),
        rng.standard_normal(8000).astype(np.float32) * 0.3,
        np.tile(np.array([0.5, -0.5], np.float32), 4000),  # Nyquist: the worst overshoot
        (0.5 * np.sin(2 * np.pi * np.arange(8000) / 4 + np.pi / 4)).astype(np.float32),
    ]
    # The worst cases: one output's 20 inputs carry its taps' signs, all equally loud
    # (it meets the L1 bound) or loud only inside its own granule (it comes close to
    # the neighbour-weighted one).
    phases = truepeak._phases()
    worst = []
    for position in range(8):
        for phase in range(3):
            for others in ("same", "quiet"):
                x = np.zeros(2000, np.float32)
                at = 800 + position
                for j in range(20):
                    sample = at - 9 + j
                    inside = sample // 8 == 100
                    level = 0.9 if inside or others == "same" else rng.uniform(0, 0.05)
                    x[sample] = np.sign(phases[j, phase]) * level
                worst.append(len(kinds))
                kinds.append(x)
    closest = 0.0
    for kind, x in enumerate(kinds):
        buffer = np.concatenate([np.zeros(CONTEXT, np.float32), x, np.zeros(CONTEXT, np.float32)])
        n = len(x)
        outputs = oversampled(buffer)[4 * CONTEXT : 4 * (CONTEXT + n)].reshape(n, 4)
        per_granule = outputs[:, 1:].max(axis=1).reshape(-1, 8).max(axis=1)  # phase 0: the samples
        bounds = truepeak.granule_bounds(np.abs(buffer), n)
        assert np.all(per_granule <= bounds)
        if kind in worst:
            closest = max(closest, float(per_granule[100] / bounds[100]))
        if kind == 0:  # on speech the screen skips most: pauses, quiet parts, troughs
            assert np.mean(bounds < per_granule.max()) > 0.5
    assert closest > 1 - 1e-6


def test_a_first_part_counts_only_its_own_outputs():
    # A stream cut at a sample that is not on a granule boundary, a click just after the
    # cut inside the same granule: the first part's peak is that of its own samples'
    # outputs (shaped by what follows), the second's the rest (the click's own).
    rng = np.random.default_rng(3)
    x = speechlike(rng, 40_000) * 0.5
    cut = 20_003
    x[cut - 30 : cut + 30] = 0
    x[cut + 2] = 0.95
    whole = oversampled(x)
    first = TruePeakMeter()
    feed(first, x[:cut], [4096])
    first_peak = first.finish(after=x[cut:])
    second = TruePeakMeter(history=x[:cut])
    feed(second, x[cut:], [5000])
    second_peak = second.finish()
    assert first_peak == pytest.approx(whole[: 4 * cut].max(), rel=1e-12)
    assert second_peak == pytest.approx(whole[4 * cut :].max(), rel=1e-12)
    assert first_peak < 0.8 and second_peak >= 0.95


def test_float64_samples_are_measured_as_they_are():
    # Not rounded to float32 on the way (the renderer's blocks are float32; others need not be).
    rng = np.random.default_rng(5)
    x = rng.standard_normal(30_000) * 0.2 + 1e-9
    meter = TruePeakMeter(history=x[:100].astype(np.float32))
    meter.add(x[100:])
    reference = oversampled(np.concatenate([x[:100].astype(np.float32), x[100:]]))
    assert meter.finish() == pytest.approx(reference[400:].max(), rel=1e-12)


def test_a_reused_block_buffer_is_copied():
    # Renderers may fill the same array again for the next block.
    rng = np.random.default_rng(9)
    x = speechlike(rng, 20_000)
    meter = TruePeakMeter()
    block = np.empty(1000, np.float32)
    for at in range(0, len(x), 1000):
        block[:] = x[at : at + 1000]
        meter.add(block)
    assert meter.finish() == pytest.approx(oversampled(x).max(), rel=1e-12)


def test_the_banded_product_is_the_polyphase_filter():
    # One row of the product: a granule's 8 samples, phases 1-3, against resample_poly.
    rng = np.random.default_rng(1)
    x = rng.standard_normal(200)
    values = x[40 - 9 : 40 - 9 + 27] @ truepeak._banded()
    reference = scipy.signal.resample_poly(x, 4, 1)[4 * 40 : 4 * 48].reshape(8, 4)[:, 1:]
    assert np.allclose(np.abs(values), np.abs(reference.reshape(-1)), rtol=1e-12, atol=1e-15)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
    reason="counts threads in /proc (Linux); on one core BLAS starts no thread to count",
)
def test_one_blas_thread_keeps_numpy_from_starting_threads():
    # prtvoice.blas before numpy loads: no BLAS threads beside the main one (without
    # it, OpenBLAS starts one per core); a setting of the user's own is kept.
    count = (
        "import os, sys; from prtvoice import blas; "
        "blas.one_thread() if sys.argv[1] == 'one' else None; import numpy; "
        "print(len(os.listdir('/proc/self/task')), os.environ.get('OPENBLAS_NUM_THREADS'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}

    def threads(mode: str, **extra) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", count, mode], env={**env, **extra}, capture_output=True,
            text=True, check=True,
        )  # fmt: skip
        return out.stdout.split()

    assert threads("one") == ["1", "1"]
    assert int(threads("default")[0]) > 1
    assert threads("one", OPENBLAS_NUM_THREADS="2")[1] == "2"
