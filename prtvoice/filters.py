"""The few filters measuring and limiting need, exact and on numpy alone.

scipy.signal would do each in a call, but importing it takes 1-1.5 s here
(it pulls in scipy.stats, scipy.interpolate, scipy.optimize ...): longer than
a re-export's whole measuring, and on a 2-core machine that import competes
with the audio being rendered. Each function here is checked against scipy's
own in the tests (tests/test_filters.py), to float rounding.

- `KWeighting`: BS.1770's K-weighting (pyloudnorm's two RBJ biquads, as one
  4th-order IIR) run block by block: each block's zero-state response by FFT
  convolution with the impulse response, plus the response to the state it
  starts in. Exact (no truncated impulse response), like `sosfilt` with `zi`.
- `lowpass_taps` (= `scipy.signal.firwin(n, cutoff, window=("kaiser", beta))`)
  and `upsample` (= `scipy.signal.upfirdn(taps, x, up)`), for true peak.
- `sliding_min` (= `scipy.ndimage.minimum_filter1d(x, size, mode="nearest")`,
  odd sizes), for the limiter's look-ahead, in O(n) (van Herk / Gil-Werman).
"""

from __future__ import annotations

import functools
import math

import numpy as np

_BLOCK = 4096  # frames per FFT convolution (an 8192-point FFT)
_DIRECT = 64  # shorter pieces are convolved directly
SETTLED = 1e-15  # a filter state below this everywhere counts as silence


def k_weighting_stages(sample_rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(b, a) of BS.1770's two stages: the +4 dB high shelf, then the 38 Hz high pass.

    RBJ cookbook biquads with pyloudnorm's parameters (G, Q, fc), normalised to a[0] = 1.
    """
    stages = []
    for kind, gain_db, q, fc in (("shelf", 4.0, 1 / math.sqrt(2), 1500.0), ("pass", 0.0, 0.5, 38.0)):
        big_a = 10 ** (gain_db / 40)
        w0 = 2 * math.pi * fc / sample_rate
        cos, alpha = math.cos(w0), math.sin(w0) / (2 * q)
        if kind == "shelf":
            root = 2 * math.sqrt(big_a) * alpha
            b = [
                big_a * ((big_a + 1) + (big_a - 1) * cos + root),
                -2 * big_a * ((big_a - 1) + (big_a + 1) * cos),
                big_a * ((big_a + 1) + (big_a - 1) * cos - root),
            ]
            a = [
                (big_a + 1) - (big_a - 1) * cos + root,
                2 * ((big_a - 1) - (big_a + 1) * cos),
                (big_a + 1) - (big_a - 1) * cos - root,
            ]
        else:
            b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
            a = [1 + alpha, -2 * cos, 1 - alpha]
        stages.append((np.array(b) / a[0], np.array(a) / a[0]))
    return stages


@functools.cache
def _responses(b: tuple[float, ...], a: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Impulse responses of B/A (h) and 1/A (g), _BLOCK samples each, and h's spectrum."""
    order = len(a) - 1
    h = np.zeros(_BLOCK)
    g = np.zeros(_BLOCK)
    # A once-per-rate recursion (a few milliseconds); numpy has no IIR of its own.
    for n in range(_BLOCK):
        hn = b[n] if n <= order else 0.0
        gn = 1.0 if n == 0 else 0.0
        for k in range(1, min(n, order) + 1):
            hn -= a[k] * h[n - k]
            gn -= a[k] * g[n - k]
        h[n], g[n] = hn, gn
    return h, g, np.fft.rfft(h, 2 * _BLOCK)


class KWeighting:
    """K-weighting of a mono float64 stream, block by block (any block lengths)."""

    def __init__(self, sample_rate: int) -> None:
        (b1, a1), (b2, a2) = k_weighting_stages(sample_rate)
        self._b = np.convolve(b1, b2)
        self._a = np.convolve(a1, a2)
        self._h, self._g, self._spectrum = _responses(tuple(self._b), tuple(self._a))
        self.order = len(self._a) - 1
        # The last `order` inputs and outputs: the filter's whole memory.
        self._x = np.zeros(self.order)
        self._y = np.zeros(self.order)

    def settled(self) -> bool:
        """True when the filter's memory is (practically) silence."""
        return max(float(np.abs(self._x).max()), float(np.abs(self._y).max())) < SETTLED

    def reset(self) -> None:
        self._x[:] = 0.0
        self._y[:] = 0.0

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter the next samples (1-D float64); returns as many."""
        out = np.empty(len(x))
        for start in range(0, len(x), _BLOCK):
            piece = x[start : start + _BLOCK]
            out[start : start + len(piece)] = self._piece(piece)
        return out

    def _piece(self, x: np.ndarray) -> np.ndarray:
        m, order, b, a = len(x), self.order, self._b, self._a
        # The state (transposed direct form II) the piece starts in, from the memory:
        # z_i = sum over k >= i of b_k x[-1 + i - k] - a_k y[-1 + i - k].
        xs, ys = self._x, self._y
        z = np.zeros(order)
        for i in range(1, order + 1):
            for k in range(i, order + 1):
                z[i - 1] += b[k] * xs[order - 1 + i - k] - a[k] * ys[order - 1 + i - k]
        if m <= _DIRECT:
            y = np.convolve(x, self._h[:m])[:m]
        else:
            y = np.fft.irfft(np.fft.rfft(x, 2 * _BLOCK) * self._spectrum, 2 * _BLOCK)[:m]
        # Plus what the state alone would give: its zero-input response.
        for i in range(order):
            if i < m:
                y[i:] += z[i] * self._g[: m - i]
        self._x = np.concatenate([xs, x])[-order:]
        self._y = np.concatenate([ys, y])[-order:]
        return y


def lowpass_taps(numtaps: int, cutoff: float, *, beta: float) -> np.ndarray:
    """A Kaiser-window FIR low pass, as `scipy.signal.firwin(numtaps, cutoff,
    window=("kaiser", beta))` makes it (`cutoff` relative to Nyquist, unit gain at 0 Hz)."""
    m = np.arange(numtaps) - (numtaps - 1) / 2
    taps = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, beta)
    return taps / taps.sum()


def upsample(taps: np.ndarray, x: np.ndarray, up: int) -> np.ndarray:
    """`scipy.signal.upfirdn(taps, x, up)`: x with up-1 zeros after each sample,
    filtered by `taps`; (len(x) - 1) * up + len(taps) samples.

    Polyphase: output phase p is x convolved with taps[p::up] (the zeros are
    never multiplied). Not as one matrix product over x's windows, though that
    is twice as fast on the clock: BLAS runs it on every core, taking the
    encoder's core from it while an export streams (measured: +1.3 s at 20 min).
    """
    length = (len(x) - 1) * up + len(taps)
    out = np.zeros(len(x) * up + len(taps))
    for phase in range(up):
        branch = np.convolve(x, taps[phase::up])
        out[phase : phase + up * len(branch) : up] = branch
    return out[:length]


def sliding_min(x: np.ndarray, size: int) -> np.ndarray:
    """min(x[k - size//2 .. k + size//2]) for every k, edges repeating the end samples
    (`scipy.ndimage.minimum_filter1d(x, size, mode="nearest")` for odd `size`)."""
    if size % 2 != 1:
        raise ValueError("sliding_min takes an odd size")
    n, half = len(x), size // 2
    if n == 0:
        return x.copy()
    padded = np.concatenate([np.full(half, x[0]), x, np.full(half, x[-1])])
    # van Herk / Gil-Werman: minima running forward and backward within blocks of
    # `size`; every window spans one block boundary at most, so two lookups do.
    blocks = -(-len(padded) // size)
    data = np.full(blocks * size, np.inf)
    data[: len(padded)] = padded
    grid = data.reshape(blocks, size)
    forward = np.minimum.accumulate(grid, axis=1).reshape(-1)
    backward = np.minimum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].reshape(-1)
    starts = np.arange(n)
    return np.minimum(backward[starts], forward[starts + size - 1])
