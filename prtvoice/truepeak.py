"""True peak (ITU-R BS.1770-4 Annex 2): the largest magnitude after 4x oversampling.

The oversampling filter is the one scipy's polyphase `resample_poly(x, 4, 1)`
designs, and the meter's result equals oversampling the whole signal at once
(to float64 rounding), however the stream is cut into blocks.

Most oversampled values cannot matter: a value is a weighted sum of the 20
input samples around it, so it is at most those samples' magnitudes times the
weights' magnitudes. The meter bounds every granule of 8 samples that way from
the maxima of its own and its neighbouring granules, and computes exactly only
the granules whose bound beats the peak found so far: on a normalised speech
session about one sample in ten (the pitch pulses of loud syllables); pauses,
quiet syllables and the troughs between pulses are skipped exactly. The exact
values come from one matrix product per batch of granules (see `_banded`).

Everything stays in the samples' own float32 until the product, which runs in
float64; the bounds carry a margin far above their rounding, so the screening
only ever errs towards computing.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from prtvoice.filters import lowpass_taps

_OVERSAMPLE = 4
_HALF = 10 * _OVERSAMPLE  # the filter's half length (resample_poly's design: 81 taps)
_TAPS = 2 * _HALF // _OVERSAMPLE  # 20 taps in each of phases 1-3
# Output phase p after input sample s weighs inputs s - _BEFORE .. s + _TAPS - 1 - _BEFORE.
_BEFORE = _TAPS // 2 - 1
# Samples kept on each side of those evaluated: more than the filter reaches
# (10), enough for the granules' neighbours (2 x 8 + 9), so block edges never
# change the result.
CONTEXT = 32
_GRANULE = 8  # samples per screening granule (a power of two: maxima by halving)
_NEIGHBOURS = 2  # granules each side that a granule's outputs reach into
_FLUSH = 1 << 15  # samples gathered before evaluating: numpy's per-call cost is paid rarely
_ROWS = 512  # granules per matrix product (its float64 copy stays in the cache)
_MARGIN = 1 + 1e-9  # bounds round to ~1e-16; this keeps them bounds


@functools.cache
def _interpolator() -> np.ndarray:
    """The filter scipy's resample_poly(x, 4, 1) designs."""
    return lowpass_taps(2 * _HALF + 1, 1.0 / _OVERSAMPLE, beta=5.0) * _OVERSAMPLE


@functools.cache
def _phases() -> np.ndarray:
    """(_TAPS, 3): column p - 1 weighs inputs s - _BEFORE ... for output phase p (1-3)."""
    taps = _interpolator()
    return np.stack([taps[p::_OVERSAMPLE][::-1] for p in range(1, _OVERSAMPLE)], axis=1)


@functools.cache
def _centre() -> float:
    # Phase 0 is the samples themselves times the centre tap: its other taps fall on
    # the sinc's zeros (~4e-17), far below float rounding, so it is never convolved.
    return abs(float(_interpolator()[_HALF]))


@functools.cache
def _banded() -> np.ndarray:
    """(_GRANULE + _TAPS - 1, 3 * _GRANULE): a granule's window of inputs times this
    gives its 8 samples' phases 1-3 (column 3 * position + phase - 1) in one product."""
    g, phases = _GRANULE, _phases()
    out = np.zeros((g + _TAPS - 1, 3 * g))
    for position in range(g):
        out[position : position + _TAPS, 3 * position : 3 * position + 3] = phases
    return out


@functools.cache
def _bounds() -> tuple[float, np.ndarray]:
    """The screening weights: (largest L1 norm of a phase, per-neighbour weights).

    weights[d] (d = 0 .. 2 * _NEIGHBOURS, granule offset d - _NEIGHBOURS) is the
    largest sum of |taps| that any output of a granule puts on the inputs in that
    neighbour, so sum(weights[d] x neighbour maximum) bounds every output, and so
    does (L1 norm x largest neighbour maximum); the meter takes the smaller.
    """
    phases = np.abs(_phases())
    weights = np.zeros(2 * _NEIGHBOURS + 1)
    for position in range(_GRANULE):
        offsets = (position - _BEFORE + np.arange(_TAPS)) // _GRANULE + _NEIGHBOURS
        for p in range(3):
            per = np.bincount(offsets, weights=phases[:, p], minlength=len(weights))
            weights = np.maximum(weights, per)
    return float(phases.sum(axis=0).max()), weights


class TruePeakMeter:
    """Maximum absolute value of a mono stream after 4x oversampling (BS.1770 true peak)."""

    def __init__(self, history: np.ndarray | None = None) -> None:
        # Zeros stand for the silence before the stream, as whole-signal oversampling
        # assumes; `history`, the samples before a stream's later part, for the real ones.
        self._parts = [_context(history, before=True)]
        self._pending = 0
        self.peak = 0.0
        self.sample_peak = 0.0

    def add(self, block: np.ndarray) -> None:
        # A copy: the caller may reuse its block. float32 stays float32 (exact either way).
        x = np.array(block, dtype=_dtype(block), copy=True).reshape(-1)
        if len(x):
            self._parts.append(x)
            self._pending += len(x)
            if self._pending >= _FLUSH:
                self._evaluate(final=False)

    def finish(self, after: np.ndarray | None = None) -> float:
        """End of stream: evaluate what is left; returns the peak (linear).

        `after`: the samples that follow, when this is a stream's first part
        (they shape the peaks between its last samples; silence otherwise).
        """
        self._parts.append(_context(after, before=False))
        self._evaluate(final=True)
        return self.peak

    def _evaluate(self, *, final: bool) -> None:
        # Samples [C, len - C) of the buffer have C samples of context on both sides.
        c = CONTEXT
        buffer = np.concatenate(self._parts)
        n = len(buffer) - 2 * c
        if n > 0:
            magnitude = np.abs(buffer)
            self.sample_peak = max(self.sample_peak, float(magnitude[c : c + n].max()))
            self.peak = max(self.peak, _centre() * self.sample_peak)
            granules = self._screen(magnitude, n)
            if len(granules):
                self.peak = max(self.peak, _oversampled_peak(buffer, granules, n))
        tail = buffer[-2 * c :] if not final else buffer[:0]
        self._parts = [tail]
        self._pending = 0

    def _screen(self, magnitude: np.ndarray, n: int) -> np.ndarray:
        """Indices of the granules (of samples C + 8j ...) whose outputs may beat the peak."""
        return np.flatnonzero(granule_bounds(magnitude, n) > self.peak)


def granule_bounds(magnitude: np.ndarray, n: int) -> np.ndarray:
    """Per granule j (samples C + 8j ... of a buffer with C of context each side, n
    evaluated), a number no phase 1-3 output of its samples exceeds in magnitude."""
    g, k = _GRANULE, _NEIGHBOURS
    count = -(-n // g)
    # Granule maxima from k granules before the first to k after the last (the
    # context covers them: C >= (k + 1) * g + 7), by halving pairwise.
    maxima = magnitude[CONTEXT - k * g : CONTEXT + g * (count + k)]
    while len(maxima) > count + 2 * k:
        maxima = np.maximum(maxima[0::2], maxima[1::2])
    maxima = maxima.astype(np.float64)
    norm, weights = _bounds()
    reach = maxima[:count].copy()
    weighted = maxima[:count] * weights[0]
    for d in range(1, 2 * k + 1):
        neighbour = maxima[d : d + count]
        np.maximum(reach, neighbour, out=reach)
        weighted += neighbour * weights[d]
    return np.minimum(reach * norm, weighted) * _MARGIN


def _oversampled_peak(buffer: np.ndarray, granules: np.ndarray, n: int) -> float:
    """The largest |phase 1-3 output| of samples C + 8j + (0..7) < C + n, j in `granules`."""
    g = _GRANULE
    windows = sliding_window_view(buffer, g + _TAPS - 1)[granules * g + (CONTEXT - _BEFORE)]
    banded = _banded()
    peak = 0.0
    last = n - g * int(granules[-1])  # samples of the last granule that are the stream's
    full = len(granules) - (last < g)
    for start in range(0, full, _ROWS):
        values = windows[start : min(start + _ROWS, full)].astype(np.float64) @ banded
        peak = max(peak, float(np.abs(values).max()))
    if full < len(granules):  # its later samples belong to what follows (`after`)
        values = windows[-1].astype(np.float64) @ banded[:, : 3 * last]
        peak = max(peak, float(np.abs(values).max()))
    return peak


def _dtype(samples: np.ndarray) -> type:
    return np.float32 if np.asarray(samples).dtype == np.float32 else np.float64


def _context(samples: np.ndarray | None, *, before: bool) -> np.ndarray:
    """CONTEXT samples next to a stream: `samples`' nearest ones, zeros beyond them."""
    out = np.zeros(CONTEXT, dtype=np.float32 if samples is None else _dtype(samples))
    if samples is not None:
        x = np.asarray(samples).reshape(-1)
        x = x[-CONTEXT:] if before else x[:CONTEXT]
        if before:
            out[CONTEXT - len(x) :] = x
        else:
            out[: len(x)] = x
    return out
