"""An export's measuring pass (pass 1) on two cores: its later half in a helper process.

Pass 1 renders the whole session to find its loudness, sample peak and each
100 ms hop's energy and peak; until it ends nothing can be encoded, so on a
2-core machine one core used to wait. Here the session is cut at a hop
boundary near its middle: this process measures the first half while a forked
helper (prtvoice.forked) measures the second, its K-weighting filter first
settled on the hop before the cut, as the encoding halves' meters are. The
hop energies joined are one meter's over the whole (to float rounding), so the
gain decided from them is the one a single pass finds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from prtvoice import forked
from prtvoice.errors import EncoderError
from prtvoice.halves import cores
from prtvoice.loudness import LoudnessMeter, Measurement, MeterPart, StreamMeter

Span = Callable[[int, int], Iterable[np.ndarray]]
Progress = Callable[[int, int], None]
# Below this much audio a fork's cost (a few ms, and copy-on-write faults after
# it) is a good part of what the helper would save.
MIN_SECONDS = 60.0


def measure_in_two(
    span: Span,
    *,
    frames: int,
    sample_rate: int,
    progress: Progress | None = None,
    done: int = 0,
    total: int = 0,
) -> tuple[Measurement, LoudnessMeter] | None:
    """Pass 1 in two processes: the measurement (true peak NaN: not measured) and the
    loudness meter with every hop's energy and peak, as `export._measure` gives them
    with true_peak=False. None when it cannot run here (one core, no fork, short).

    Raises EncoderError when the renderer does not give `frames` samples.
    """
    hop = round(0.1 * sample_rate)  # the meters' hop (LoudnessMeter)
    cut = frames // 2 // hop * hop
    if frames < MIN_SECONDS * sample_rate or cut < hop or cores() < 2 or not forked.available():
        return None

    def later() -> tuple[MeterPart, float]:
        history = [np.asarray(block, dtype=np.float32).reshape(-1) for block in span(cut - hop, cut)]
        meter = StreamMeter(
            sample_rate=sample_rate, hop_peaks=True, true_peak=False,
            history=np.concatenate(history) if history else None,
        )  # fmt: skip
        for block in span(cut, frames):
            meter.add(block)
        assert meter.loudness is not None
        return meter.loudness.part(), meter.result().sample_peak_db

    def earlier() -> tuple[StreamMeter, int]:
        meter = StreamMeter(sample_rate=sample_rate, hop_peaks=True, true_peak=False)
        count = 0
        for block in span(0, cut):
            meter.add(block)
            count += len(block)
            if progress:  # the helper goes about as fast: its half is counted too
                progress(done + min(2 * count, frames), total)
        return meter, count

    (first, count), (part, later_peak_db) = forked.both(earlier, later)
    head = first.result()
    meter = first.loudness
    assert meter is not None
    if count != cut or part.frames != frames - cut:
        raise EncoderError(
            f"the renderer gave {count + part.frames} frames, the plan has {frames}"
        )
    meter.followed_by(part)
    sample_peak_db = max(head.sample_peak_db, later_peak_db)
    measured = Measurement(
        frames=frames, loudness_lufs=meter.integrated(), true_peak_db=math.nan,
        sample_peak_db=sample_peak_db,
    )  # fmt: skip
    if progress:
        progress(done + frames, total)
    return measured, meter

