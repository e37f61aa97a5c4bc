"""The few filters measuring and limiting need, exact, without importing scipy.signal.

scipy.signal would do each in a call, but importing it takes 1-1.5 s here
(it pulls in scipy.stats, scipy.interpolate, scipy.optimize ...): longer than
a re-export's whole measuring, and on a 2-core machine that import competes
with the audio being rendered. Each function here is checked against scipy's
own in the tests (tests/test_filters.py), to float rounding.

- `KWeighting`: BS.1770's K-weighting (pyloudnorm's two RBJ biquads) run
  block by block, like `sosfilt` with `zi`. It runs scipy.signal's own compiled
  sosfilt kernel when that loads without the package (`compiled_sosfilt`:
  ~11 ns a sample against ~40-80 for the numpy way, and the K-weighting is most
  of what measuring loudness costs). Otherwise, numpy alone: as one 4th-order
  IIR, each block's zero-state response by FFT convolution with the impulse
  response, plus the response to the state it starts in. Exact both ways (no
  truncated impulse response).
- `lowpass_taps` (= `scipy.signal.firwin(n, cutoff, window=("kaiser", beta))`),
  the interpolation filter of the true-peak meter.
- `sliding_min` (= `scipy.ndimage.minimum_filter1d(x, size, mode="nearest")`,
  odd sizes), for the limiter's look-ahead, in O(n) (van Herk / Gil-Werman).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable

import numpy as np

_BLOCK = 4096  # frames per FFT convolution (an 8192-point FFT)
_DIRECT = 64  # shorter pieces are convolved directly
SETTLED = 1e-15  # a filter state below this everywhere counts as silence


def k_weighting_stages(sample_rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(b, a) of BS.1770's two stages: the +4 dB high shelf, then the 38 Hz high pass.

    RBJ cookbook biquads with pyloudnorm's parameters (G, Q, fc), normalised to a[0] = 1.
    """
    stages = []
    for kind, gain_db, q, fc in (
        ("shelf", 4.0, 1 / math.sqrt(2), 1500.0),
        ("pass", 0.0, 0.5, 38.0),
    ):
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
def _responses(
    b: tuple[float, ...], a: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


SosKernel = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


@functools.cache
def compiled_sosfilt() -> SosKernel | None:
    """scipy.signal's compiled sosfilt kernel, loaded without importing scipy.signal.

    `kernel(sos, x, zi)` filters x (float64, C-contiguous, shape (1, n)) in
    place through the sections `sos` (shape (s, 6)), carrying the state `zi`
    (shape (1, s, 2)), as `scipy.signal.sosfilt(sos, x, zi=zi)` does.

    Importing scipy.signal takes 1-1.5 s (see the module docstring); its kernel
    alone loads in ~30 ms (scipy's package and the one extension). The kernel
    is scipy's private API, so it must pass a known-answer check here before it
    is used; None (the numpy filter is used) when it is missing, moved, or
    behaves otherwise.
    """
    name = "scipy.signal._sosfilt"
    try:
        with _KERNEL_LOCK:  # two first callers at once: the second finds it in sys.modules
            module = _load_extension(name)
        if module is None:
            return None
        kernel = module._sosfilt
        if not _kernel_answers_right(kernel):
            return None
        return kernel
    except Exception:  # any failure to load or to agree means: use numpy
        return None


_KERNEL_LOCK = threading.Lock()


def _load_extension(name: str):
    """scipy.signal's `_sosfilt` extension module (None when scipy has no such file)."""
    import importlib.machinery
    import importlib.util
    import sys
    from pathlib import Path

    module = sys.modules.get(name)
    if module is None:
        import scipy  # the package only (~25 ms): the extension needs it

        folder = Path(scipy.__file__).parent / "signal"
        found = [
            folder / f"_sosfilt{suffix}"
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
            if (folder / f"_sosfilt{suffix}").is_file()
        ]
        if not found:
            return None
        loader = importlib.machinery.ExtensionFileLoader(name, str(found[0]))
        spec = importlib.util.spec_from_file_location(name, found[0], loader=loader)
        if spec is None:
            return None
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        sys.modules[name] = module  # one instance per process: a second load fails
    return module


def _kernel_answers_right(kernel: SosKernel) -> bool:
    """Two sections, an impulse, a state carried across a split: against plain recursion."""
    sos = np.array([[0.5, 0.25, 0.125, 1.0, -0.5, 0.25], [1.0, -1.0, 0.5, 1.0, 0.3, 0.2]])
    x = np.zeros(40)
    x[0], x[7] = 1.0, -0.75
    expected = x.copy()
    for b0, b1, b2, _, a1, a2 in sos:  # direct form I, one section after the other
        out = np.zeros_like(expected)
        for n in range(len(out)):
            out[n] = (
                b0 * expected[n]
                + (b1 * expected[n - 1] if n >= 1 else 0.0)
                + (b2 * expected[n - 2] if n >= 2 else 0.0)
                - (a1 * out[n - 1] if n >= 1 else 0.0)
                - (a2 * out[n - 2] if n >= 2 else 0.0)
            )
        expected = out
    zi = np.zeros((1, 2, 2))
    got = []
    for piece in (x[:13], x[13:]):
        y = np.ascontiguousarray(piece).reshape(1, -1)
        kernel(sos, y, zi)
        got.append(y[0])
    return bool(np.allclose(np.concatenate(got), expected, rtol=1e-12, atol=1e-15))


def k_weighting(
    sample_rate: int, *, compiled: bool | None = None
) -> KWeighting | CompiledKWeighting:
    """A K-weighting filter for a mono float64 stream, block by block.

    `compiled`: None takes scipy's kernel when it loads (compiled_sosfilt), True
    requires it (ValueError without), False takes the numpy filter. Both give
    the same samples to float rounding (tests/test_filters.py).
    """
    if compiled is not False:
        kernel = compiled_sosfilt()
        if kernel is not None:
            return CompiledKWeighting(sample_rate, kernel)
        if compiled:
            raise ValueError("scipy's compiled sosfilt kernel is not available")
    return KWeighting(sample_rate)


class KWeighting:
    """K-weighting on numpy alone, block by block (any block lengths)."""

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


class CompiledKWeighting:
    """K-weighting through scipy's compiled sosfilt kernel (KWeighting's interface)."""

    def __init__(self, sample_rate: int, kernel: SosKernel) -> None:
        self._kernel = kernel
        self._sos = np.array([np.concatenate([b, a]) for b, a in k_weighting_stages(sample_rate)])
        self._zi = np.zeros((1, len(self._sos), 2))

    def settled(self) -> bool:
        return float(np.abs(self._zi).max()) < SETTLED

    def reset(self) -> None:
        self._zi[:] = 0.0

    def process(self, x: np.ndarray) -> np.ndarray:
        y = np.array(x, dtype=np.float64, order="C").reshape(1, -1)  # filtered in place
        self._kernel(self._sos, y, self._zi)
        return y.reshape(-1)


def lowpass_taps(numtaps: int, cutoff: float, *, beta: float) -> np.ndarray:
    """A Kaiser-window FIR low pass, as `scipy.signal.firwin(numtaps, cutoff,
    window=("kaiser", beta))` makes it (`cutoff` relative to Nyquist, unit gain at 0 Hz)."""
    m = np.arange(numtaps) - (numtaps - 1) / 2
    taps = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, beta)
    return taps / taps.sum()


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
