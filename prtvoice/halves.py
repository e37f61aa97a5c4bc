"""An MP3 export encoded on two cores: each half in its own ffmpeg, joined at a frame.

LAME runs on one core, and an export's encoding pass is mostly LAME's time. So a
long enough MP3 session is rendered as two overlapping spans at once, one per
thread, each through its own gain, limiter and meter into its own ffmpeg; the
second file's frames are then appended to the first's at a frame boundary
(prtvoice.mp3join says why that is exact).

The spans overlap by some twenty frames around a planned cut:

- the second encoder's input starts a whole number of frames into the session,
  PREROLL frames before the earliest cut the join may choose, and its render
  starts two hops earlier still, so its limiter has settled on real audio;
- the first encoder's input runs TAIL frames past the latest cut (LAME looks
  ahead), and the join may move the cut WINDOW frames either way to find
  frames whose windows fit together;
- the meters split the session at a hop boundary inside the overlap: the first
  measures up to it (seeing the samples after it for the true peak), the second
  from it (settled on the samples before it), and their hop energies join into
  the whole session's loudness (prtvoice.loudness.joined).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prtvoice.encode import Encoder
from prtvoice.errors import EncoderError
from prtvoice.loudness import Measurement, PeakLimiter, StreamMeter, from_db, joined
from prtvoice.mp3join import FRAME, LAME_DELAY

MIN_SECONDS = 120.0  # shorter sessions encode in well under a second: one ffmpeg
RATES = (16000, 22050, 24000)  # MPEG-2 Layer III, what mp3join handles
WINDOW = 6  # frames either side of the planned cut that the join may choose
PREROLL = 4  # frames the second encoder makes before the earliest cut
TAIL = 4  # frames the first encoder makes after the latest cut (LAME's look-ahead)
HISTORY_HOPS = 1  # the second meter settles on this much of the stream before its part
AFTER = 32  # samples after the first meter's part that shape its last true peaks

Span = Callable[[int, int], Iterable[np.ndarray]]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Halves:
    """Where a session of `frames` samples is split (all positions in samples)."""

    frames: int
    cut: int  # the planned cut: the session's first frame taken from the second encode
    hop: int  # the loudness meter's hop

    @property
    def offset_frames(self) -> int:
        """The session's frame where the second encoder's input starts."""
        return self.cut - WINDOW - PREROLL

    @property
    def cuts(self) -> range:
        return range(self.cut - WINDOW, self.cut + WINDOW + 1)

    @property
    def first_end(self) -> int:
        """The first encoder gets samples [0, first_end)."""
        return min(self.frames, FRAME * (self.cut + WINDOW + TAIL + 2))

    @property
    def second_start(self) -> int:
        """The second encoder gets samples [second_start, frames)."""
        return FRAME * self.offset_frames

    @property
    def meter_split(self) -> int:
        """The first meter measures [0, meter_split), the second the rest (a hop boundary)."""
        return self.hop * -(-self.second_start // self.hop)

    @property
    def render_start(self) -> int:
        """The second span's render starts here: its limiter and meter settle before use."""
        return self.second_start - (HISTORY_HOPS + 1) * self.hop


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def second_path(partial: Path) -> Path:
    """Where the second half's ffmpeg writes: beside the first half's partial file.

    The same folder (the join copies within one file system, not through a small
    /tmp), and named after it, so a run after a SIGKILL tidies it up with the
    partial file (atomic.remove_stale_partials).
    """
    return partial.with_name(partial.name + "-second")


def plan_halves(frames: int, *, sample_rate: int, quiet: int | None = None) -> Halves | None:
    """Halves for a session, cut near sample `quiet` (default: the middle); None: one encoder."""
    if sample_rate not in RATES or frames < MIN_SECONDS * sample_rate:
        return None
    hop = round(0.1 * sample_rate)
    middle = frames // 2 if quiet is None else quiet
    # Frame c holds samples from FRAME * c - LAME_DELAY: cut so that the planned
    # quiet sample falls at the frame boundary.
    cut = (middle + LAME_DELAY) // FRAME
    halves = Halves(frames, cut, hop)
    if halves.render_start < 0 or halves.first_end >= frames - hop:
        return None
    return halves


def quiet_point(hop_peaks: np.ndarray, *, hop: int, frames: int, spread: float = 0.1) -> int:
    """A sample in the quietest hop within `spread` of the session's middle.

    A cut in a pause is where both encoders are surest to use long windows.
    """
    n = len(hop_peaks)
    lo, hi = int(n * (0.5 - spread)), int(n * (0.5 + spread)) + 1
    if hi <= lo:
        return frames // 2
    window = hop_peaks[lo:hi]
    # The quietest hop; among equals (digital silence), the one nearest the middle.
    best = np.flatnonzero(window <= window.min())
    pick = lo + int(best[np.argmin(np.abs(best + lo - n // 2))])
    return pick * hop + hop // 2


def pause_point(events: Iterable, *, frames: int, sample_rate: int, spread: float = 0.1):
    """The middle of the planned pause nearest the session's middle (within `spread`), or None.

    For an export that is not measured first (a remembered gain): a pause is
    where both encoders are surest to use long windows.
    """
    middle = frames // 2
    best = None
    for event in events:
        if event.kind != "pause" or event.length < 0.5 * sample_rate:
            continue
        point = event.start + event.length // 2
        if abs(point - middle) <= spread * frames and (
            best is None or abs(point - middle) < abs(best - middle)
        ):
            best = point
    return best


@dataclass
class _Part:
    """One span's way into its encoder."""

    encoder: Encoder
    start: int  # the render's first sample
    send: tuple[int, int]  # samples that go to the encoder
    measure: tuple[int, int]  # samples the meter counts
    limiter: PeakLimiter | None
    meter_kind: str  # "none", "peaks", "full"
    sample_rate: int
    history_frames: int  # the second meter settles on this many samples before its part
    meter: StreamMeter | None = None
    history: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    after: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    done: int = 0  # samples sent

    def run(self, blocks: Iterable[np.ndarray], gain: np.float32, stop: threading.Event) -> None:
        position = self.start
        for block in self._limited(blocks, gain):
            if stop.is_set():
                return
            if self.meter_kind != "none":
                self._measure(block.reshape(-1), position)
            a, b = max(self.send[0], position), min(self.send[1], position + len(block))
            if b > a:
                self.encoder.write(block[a - position : b - position])
                self.done += b - a
            position += len(block)

    def _measure(self, samples: np.ndarray, position: int) -> None:
        lo, hi = self.measure
        end = position + len(samples)
        if self.meter is None:
            if end <= lo:  # before the measured part: keep its last hop to settle on
                self.history = np.concatenate([self.history, samples])[-self.history_frames :]
                return
            history = np.concatenate([self.history, samples[: max(0, lo - position)]])
            self.meter = StreamMeter(
                sample_rate=self.sample_rate,
                loudness=self.meter_kind == "full",
                history=history[-self.history_frames :] if lo > 0 else None,
            )
        a, b = max(lo, position), min(hi, end)
        if b > a:
            self.meter.add(samples[a - position : b - position].reshape(-1, 1))
        if hi < self.send[1] and end > hi:  # the samples after the measured part
            kept = self.after[: AFTER]
            piece = samples[max(hi, position) - position :][: AFTER - len(kept)]
            self.after = np.concatenate([kept, piece])

    def _limited(self, blocks: Iterable[np.ndarray], gain: np.float32) -> Iterable[np.ndarray]:
        for block in blocks:
            block = block * gain  # float32, as the one-encoder pass does
            if self.limiter is not None:
                block = self.limiter.process(block)
            if len(block):
                yield block
        if self.limiter is not None:
            tail = self.limiter.finish()
            if len(tail):
                yield tail


def encode_halves(
    span: Span,
    halves: Halves,
    *,
    gain_db: float,
    limit: float | None,
    encoders: Sequence[Encoder],
    sample_rate: int,
    meter: str,
    progress: Progress | None = None,
    done: int = 0,
    total: int = 0,
) -> tuple[Measurement | None, int]:
    """Render and encode both halves at once; (what went out, if measured; limited frames).

    `encoders`: the first half's ffmpeg and the second's, both started; both are
    closed (waited for) on success and killed on any failure. `meter`: "none",
    "peaks" (true and sample peak only) or "full" (loudness too). The files are
    the encoders' to write; the caller joins them (prtvoice.mp3join.join).
    """
    frames = halves.frames
    gain = np.float32(from_db(gain_db))
    limiters = [None, None]
    if limit is not None:
        limiters = [PeakLimiter(ceiling=limit, sample_rate=sample_rate) for _ in range(2)]
        limiters[0].count_until = halves.meter_split
        limiters[1].count_from = halves.meter_split - halves.render_start
    history = HISTORY_HOPS * halves.hop
    first = _Part(
        encoders[0], 0, (0, halves.first_end), (0, halves.meter_split), limiters[0], meter,
        sample_rate, history,
    )  # fmt: skip
    second = _Part(
        encoders[1], halves.render_start, (halves.second_start, frames),
        (halves.meter_split, frames), limiters[1], meter, sample_rate, history,
    )  # fmt: skip
    stop = threading.Event()
    failure: list[BaseException] = []

    def second_half() -> None:
        try:
            second.run(span(halves.render_start, frames), gain, stop)
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)

    thread = threading.Thread(target=second_half, name="prtvoice-second-half", daemon=True)
    try:
        thread.start()
        blocks = _reporting(span(0, halves.first_end), first, second, progress, done, total)
        first.run(blocks, gain, stop)
        while thread.is_alive():
            thread.join(0.25)
            if progress:
                progress(done + min(first.done + second.done, frames), total)
        if failure:
            raise failure[0]
        if second.done != frames - halves.second_start or first.done != halves.first_end:
            raise EncoderError(
                f"the renderer gave {first.done} + {second.done} frames, the halves need "
                f"{halves.first_end} + {frames - halves.second_start}"
            )
        for encoder in encoders:
            encoder.close()
    except BaseException:
        stop.set()
        for encoder in encoders:
            encoder.kill()
        thread.join()
        raise
    limited = sum(limiter.reduced_frames for limiter in limiters if limiter is not None)
    if meter == "none":
        return None, limited
    assert first.meter is not None and second.meter is not None
    return joined(first.meter, second.meter, after=first.after), limited


def _reporting(blocks, first: _Part, second: _Part, progress, done: int, total: int):
    """The first span's blocks, reporting both halves' progress (from the main thread)."""
    frames = second.send[1]
    for block in blocks:
        yield block
        if progress:
            progress(done + min(first.done + second.done, frames), total)
