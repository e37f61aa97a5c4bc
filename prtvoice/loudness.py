"""Streaming loudness (ITU-R BS.1770-4 integrated, gated) and true peak.

Both meters take float32 blocks of shape (frames, 1) one by one and keep only
small state, so measuring a 4-hour session costs the memory of a few blocks
plus one float per 100 ms (the gating hops).

Loudness: K-weighting (pyloudnorm's filter coefficients, run block by block:
prtvoice.filters.k_weighting), mean squares per 100 ms hop, 400 ms gating
blocks with 75 % overlap, an absolute gate at -70 LUFS and a relative gate at
-10 LU. Gating is what keeps the long silences of a session from counting:
plain RMS over a session that is half silence would read 3 dB low and the
normalised speech would come out 3 dB too loud.

True peak: 4x oversampling (prtvoice.truepeak), equal to oversampling the
whole signal at once however the stream is cut.

Everything here runs on numpy, plus scipy's compiled sosfilt kernel for the
K-weighting when it loads (see prtvoice.filters for why not scipy.signal).
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from prtvoice.filters import k_weighting, sliding_min
from prtvoice.truepeak import TruePeakMeter

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
SILENCE_LUFS = -math.inf  # what a meter reports for a signal with no gated block


class MeterPart(NamedTuple):
    """A LoudnessMeter's findings over a later part of a stream (`LoudnessMeter.part`)."""

    hops: np.ndarray  # sum of squares per finished hop
    peaks: np.ndarray | None  # sample peak per finished hop (hop_peaks=True)
    frames: int
    pending: tuple[float, int, float]  # the unfinished last hop: squares, frames, peak


class LoudnessMeter:
    """Integrated loudness (LUFS) of a mono stream, fed block by block."""

    def __init__(self, *, sample_rate: int, hop_peaks: bool = False):
        self.sample_rate = sample_rate
        # hop_peaks: also keep each hop's sample peak (one float per 100 ms), so a
        # caller can tell which hops a limiter would touch (export's gain fitting).
        self._peaks: list[float] | None = [] if hop_peaks else None
        self._pending_peak = 0.0
        self._weighting = k_weighting(sample_rate)
        self._hop = round(0.1 * sample_rate)  # 100 ms: the 75 % overlap step of 400 ms blocks
        self._pending = 0.0  # sum of squares of the unfinished hop
        self._pending_frames = 0
        self._hops: list[float] = []  # sum of squares per finished hop
        self.frames = 0

    def settle(self, history: np.ndarray) -> None:
        """Run the filter over the samples just before the stream: they count nowhere.

        A meter of a stream's second part, settled on the first part's last
        samples, finds the same hop energies as one meter over the whole (to
        float rounding): the K-weighting filter's state then matches.
        """
        x = np.asarray(history, dtype=np.float64).reshape(-1)
        if len(x):
            self._weighting.process(x)

    def add(self, block: np.ndarray) -> None:
        """Measure the next block (float, shape (frames,) or (frames, 1))."""
        if self._weighting is None:
            raise ValueError("this meter was followed by a later part: it takes no more blocks")
        x = np.asarray(block, dtype=np.float64).reshape(-1)
        self.frames += len(x)
        if not x.any() and self._weighting.settled():
            # Silence into a settled filter: the output is silence. Snapping the
            # state (< 1e-15, far below the -70 LUFS gate) to zero also keeps the
            # filter out of subnormal numbers in long pauses.
            self._weighting.reset()
            squares = np.zeros(len(x))
        else:
            y = self._weighting.process(x)
            squares = y * y
        if self._peaks is not None:
            self._add_peaks(np.abs(x))
        at = 0
        # Finish the hop begun in an earlier block, then whole hops, then keep the rest.
        if self._pending_frames:
            take = min(self._hop - self._pending_frames, len(squares))
            self._pending += float(squares[:take].sum())
            self._pending_frames += take
            at = take
            if self._pending_frames == self._hop:
                self._hops.append(self._pending)
                self._pending, self._pending_frames = 0.0, 0
        whole = (len(squares) - at) // self._hop
        if whole:
            sums = squares[at : at + whole * self._hop].reshape(whole, self._hop).sum(axis=1)
            self._hops.extend(sums.tolist())
            at += whole * self._hop
        if at < len(squares):
            self._pending += float(squares[at:].sum())
            self._pending_frames += len(squares) - at

    def _add_peaks(self, magnitude: np.ndarray) -> None:
        # The same hop boundaries as the sums of squares in `add` (called before it).
        assert self._peaks is not None
        at, hop = 0, self._hop
        if self._pending_frames:
            take = min(hop - self._pending_frames, len(magnitude))
            if take:
                self._pending_peak = max(self._pending_peak, float(magnitude[:take].max()))
            at = take
            if self._pending_frames + take == hop:
                self._peaks.append(self._pending_peak)
                self._pending_peak = 0.0
        whole = (len(magnitude) - at) // hop
        if whole:
            self._peaks.extend(
                magnitude[at : at + whole * hop].reshape(whole, hop).max(axis=1).tolist()
            )
            at += whole * hop
        if at < len(magnitude):
            self._pending_peak = max(self._pending_peak, float(magnitude[at:].max()))

    def part(self) -> MeterPart:
        """What this meter found, to append to the meter of the stream's earlier part
        (`followed_by`); small and picklable (it crosses a pipe from a helper process)."""
        return MeterPart(
            hops=np.asarray(self._hops, dtype=np.float64),
            peaks=None if self._peaks is None else np.asarray(self._peaks, dtype=np.float64),
            frames=self.frames,
            pending=(self._pending, self._pending_frames, self._pending_peak),
        )

    def followed_by(self, later: MeterPart) -> None:
        """Take in the measurement of the rest of the stream, made apart: by a meter
        `settle`d on the samples just before it, this one having ended on a hop boundary.

        The hop energies are then one meter's over the whole (to float rounding). The
        meter is closed: its filter state is not the stream's end, so `add` refuses.
        """
        if self._pending_frames:
            raise ValueError("the earlier part must end on a hop boundary")
        if (self._peaks is None) != (later.peaks is None):
            raise ValueError("both parts must keep hop peaks, or neither")
        self._hops.extend(later.hops.tolist())
        if self._peaks is not None and later.peaks is not None:
            self._peaks.extend(later.peaks.tolist())
        self.frames += later.frames
        self._pending, self._pending_frames, self._pending_peak = later.pending
        self._weighting = None  # type: ignore[assignment]

    @property
    def hop(self) -> int:
        """Frames per hop (100 ms)."""
        return self._hop

    def hop_energies(self) -> np.ndarray:
        """K-weighted sum of squares of every complete hop so far (what the gates work on)."""
        return np.asarray(self._hops, dtype=np.float64)

    def hop_peaks(self) -> np.ndarray:
        """Sample peak of every complete hop so far (only with hop_peaks=True)."""
        if self._peaks is None:
            raise ValueError("this meter keeps no hop peaks (hop_peaks=False)")
        return np.asarray(self._peaks, dtype=np.float64)

    def block_loudness(self) -> np.ndarray:
        """Loudness (LUFS) of every complete 400 ms gating block so far."""
        return block_loudness(self.hop_energies(), hop=self._hop)

    def integrated(self) -> float:
        """Gated integrated loudness in LUFS; -inf when nothing passes the gates."""
        return gated_loudness(self.hop_energies(), hop=self._hop)


def block_loudness(hops: np.ndarray, *, hop: int) -> np.ndarray:
    """Loudness (LUFS) of the 400 ms gating blocks over hop energies (LoudnessMeter.hop_energies)."""
    if len(hops) < 4:
        return np.zeros(0)
    energy = (hops[:-3] + hops[1:-2] + hops[2:-1] + hops[3:]) / (4 * hop)
    with np.errstate(divide="ignore"):
        return -0.691 + 10.0 * np.log10(energy)


def gated_loudness(hops: np.ndarray, *, hop: int) -> float:
    """BS.1770 gated integrated loudness (LUFS) of hop energies; -inf when nothing passes."""
    loudness = block_loudness(hops, hop=hop)
    energy = 10.0 ** ((loudness + 0.691) / 10.0)
    above = loudness >= ABSOLUTE_GATE_LUFS
    if not above.any():
        return SILENCE_LUFS
    relative = -0.691 + 10.0 * math.log10(energy[above].mean()) + RELATIVE_GATE_LU
    gated = above & (loudness > relative)
    return -0.691 + 10.0 * math.log10(energy[gated].mean())


@dataclass(frozen=True)
class Measurement:
    """What one pass over a stream found: loudness (LUFS) and peaks (dB, -inf for silence)."""

    frames: int
    loudness_lufs: float
    true_peak_db: float
    sample_peak_db: float


class StreamMeter:
    """Loudness and true peak together; `add` every block, then `result()`."""

    def __init__(
        self,
        *,
        sample_rate: int,
        true_peak: bool = True,
        hop_peaks: bool = False,
        loudness: bool = True,
        history: np.ndarray | None = None,
    ):
        # loudness=False: peaks only (the result's loudness is NaN), for a pass whose
        # loudness is already known exactly. history: the samples before the part of a
        # stream this meter measures (see `joined`); they settle its filters only.
        self.loudness = (
            LoudnessMeter(sample_rate=sample_rate, hop_peaks=hop_peaks) if loudness else None
        )
        if self.loudness is not None and history is not None:
            self.loudness.settle(history)
        self.peak = TruePeakMeter(history) if true_peak else None
        self._sample_peak = 0.0
        self._frames = 0

    def add(self, block: np.ndarray) -> None:
        self._frames += len(block)
        if self.loudness is not None:
            self.loudness.add(block)
        if self.peak is not None:
            self.peak.add(block)
        elif len(block):
            self._sample_peak = max(self._sample_peak, float(np.abs(block).max()))

    def result(self, after: np.ndarray | None = None) -> Measurement:
        """What was measured; `after`: the samples that follow a stream's first part."""
        if self.peak is not None:
            true_peak = self.peak.finish(after)
            sample_peak = self.peak.sample_peak
        else:
            true_peak = sample_peak = self._sample_peak
        return Measurement(
            frames=self._frames,
            loudness_lufs=self.loudness.integrated() if self.loudness is not None else math.nan,
            true_peak_db=to_db(true_peak),
            sample_peak_db=to_db(sample_peak),
        )


def joined(first: StreamMeter, second: StreamMeter, *, after: np.ndarray) -> Measurement:
    """One stream's measurement from meters of its two parts.

    `first` measured the stream up to a hop boundary (whole 100 ms hops), `second`
    the rest, made with `history=` the samples before its part; `after` are the
    samples after the first part. Loudness gates the hop energies of both, so it
    is the whole stream's (to float rounding); peaks are the larger of the two.
    """
    one, two = first.result(after=after), second.result()
    if first.loudness is not None and first.loudness.frames % first.loudness.hop:
        raise ValueError("the first part must end on a hop boundary")
    loudness = math.nan
    if first.loudness is not None and second.loudness is not None:
        hops = np.concatenate(
            [first.loudness.hop_energies(), second.loudness.hop_energies()]
        )
        loudness = gated_loudness(hops, hop=first.loudness.hop)
    return Measurement(
        frames=one.frames + two.frames,
        loudness_lufs=loudness,
        true_peak_db=max(one.true_peak_db, two.true_peak_db),
        sample_peak_db=max(one.sample_peak_db, two.sample_peak_db),
    )


class BackgroundMeter:
    """A StreamMeter fed on a thread of its own: `add` never waits for it.

    For a pass that should not wait for the meter's work (mostly numpy's FFTs,
    which let other threads run): the blocks queue up while the meter catches
    up, at most `max_blocks` of them (then `add` waits).
    `result()` waits for the meter and raises what went wrong in it;
    `cancel()` (idempotent) lets the thread go without measuring the rest.
    """

    _END = object()

    def __init__(self, *, sample_rate: int, max_blocks: int = 2048) -> None:
        import queue

        self._queue: queue.Queue = queue.Queue(maxsize=max_blocks)
        self._cancelled = threading.Event()
        self._result: Measurement | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(sample_rate,), name="prtvoice-meter", daemon=True
        )
        self._thread.start()

    def _run(self, sample_rate: int) -> None:
        try:
            meter = StreamMeter(sample_rate=sample_rate)
            while not self._cancelled.is_set():
                block = self._queue.get()
                if block is self._END:
                    self._result = meter.result()
                    return
                meter.add(block)
        except BaseException as exc:  # handed to result()
            self._error = exc
            self._cancelled.set()

    def add(self, block: np.ndarray) -> None:
        if not self._cancelled.is_set():
            self._queue.put(block)

    def result(self) -> Measurement:
        if not self._cancelled.is_set():
            self._queue.put(self._END)
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise RuntimeError("the meter was cancelled")
        return self._result

    def cancel(self) -> None:
        self._cancelled.set()
        import queue

        while True:  # unblock a thread waiting in get(), or a caller in put()
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        with contextlib.suppress(queue.Full):  # just drained: room for the end
            self._queue.put_nowait(self._END)


def to_db(linear: float) -> float:
    """Amplitude to dB (-inf for 0)."""
    return 20.0 * math.log10(linear) if linear > 0 else -math.inf


def from_db(db: float) -> float:
    return 10.0 ** (db / 20.0)


class PeakLimiter:
    """A gentle look-ahead peak limiter for a mono stream, vectorised per block.

    The gain needed at each sample (`ceiling / |x|`, at most 1) is held for
    `hold` frames and looked ahead `ramp` frames (a moving minimum), then
    smoothed with a `ramp`-long moving average. Every sample's gain is then at
    most what its own peak needs, so no output sample exceeds `ceiling`, while
    the gain moves in ramps of `ramp` frames (no clicks, no distortion on
    single samples). The output lags the input by `ramp` frames; `finish()`
    returns the tail, so the total length is unchanged. How the input is cut
    into blocks changes the result only by float rounding (about 1e-7).
    """

    def __init__(
        self,
        *,
        ceiling: float,
        sample_rate: int,
        ramp_seconds: float = 0.02,
        hold_seconds: float = 0.03,
    ):
        self.ceiling = float(ceiling)
        # Even lengths keep the centred minimum filter's window exactly [k - hold, k + ramp].
        self._ramp = 2 * max(1, round(ramp_seconds * sample_rate / 2))
        self._hold = 2 * max(1, round(hold_seconds * sample_rate / 2))
        context = self._hold + 2 * self._ramp
        self._x = np.zeros(context, dtype=np.float64)
        self._ready = context  # index in the buffers of the first sample not yet output
        self.reduced_frames = 0  # how many output samples the limiter turned down
        self.min_gain = 1.0
        # Which output samples reduced_frames counts (a part of a stream limited in
        # pieces counts only its own share): positions in [count_from, count_until).
        self.count_from, self.count_until = 0, None
        self._emitted = 0

    @property
    def reach(self) -> int:
        """Frames of input before a sample that its output depends on (hold and ramps)."""
        return self._hold + 2 * self._ramp

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed a block; returns the limited samples that are ready (float32 (n, 1))."""
        x = np.asarray(block, dtype=np.float64).reshape(-1)
        self._x = np.concatenate([self._x, x])
        return self._emit(len(self._x) - self._ramp)

    def finish(self) -> np.ndarray:
        """The last `ramp` frames (the signal is followed by silence)."""
        total = len(self._x)
        self._x = np.concatenate([self._x, np.zeros(self._ramp)])
        return self._emit(total)

    def _emit(self, upto: int) -> np.ndarray:
        start, hold, ramp = self._ready, self._hold, self._ramp
        if upto <= start:
            return np.zeros((0, 1), dtype=np.float32)
        # m[k] = min need[k - hold .. k + ramp] for k in [start - ramp, upto)
        lo = start - ramp - hold
        magnitude = np.abs(self._x[lo : upto + ramp])
        if magnitude.max() <= self.ceiling:
            # Nothing near needs turning down (most of a session): every need and
            # gain is exactly 1, as the filters below would find, at a fraction of
            # the cost (not even the needs are worked out).
            return self._advance(upto, self._x[start:upto])
        with np.errstate(divide="ignore"):
            window = np.minimum(1.0, self.ceiling / magnitude)  # each sample's need
        size = hold + ramp + 1
        centred = sliding_min(window, size)
        shift = (ramp - hold) // 2
        k0 = start - ramp - lo  # index of k = start - ramp inside `window`
        m = centred[k0 + shift : (upto - lo) + shift]
        # g[n] = mean m[n - ramp .. n]
        sums = np.concatenate([[0.0], np.cumsum(m)])
        gain = (sums[ramp + 1 :] - sums[: -ramp - 1]) / (ramp + 1)
        gain = np.minimum(gain, 1.0)
        # Never above what the sample itself needs (guards cumsum rounding).
        gain = np.minimum(gain, window[start - lo : upto - lo])
        out = self._x[start:upto] * gain
        turned = gain < 1.0 - 1e-9
        lo = max(0, self.count_from - self._emitted)
        hi = len(turned) if self.count_until is None else self.count_until - self._emitted
        if hi > lo:
            self.reduced_frames += int(turned[lo:hi].sum())
        if len(gain):
            self.min_gain = min(self.min_gain, float(gain.min()))
        return self._advance(upto, out)

    def _advance(self, upto: int, out: np.ndarray) -> np.ndarray:
        self._emitted += len(out)
        keep = upto - (self._hold + 2 * self._ramp)
        self._x = self._x[keep:]
        self._ready = upto - keep
        return out.astype(np.float32).reshape(-1, 1)
