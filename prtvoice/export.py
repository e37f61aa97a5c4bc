"""Plan -> a phone-ready file: measure, normalise, encode, tag, move into place.

Two passes over the deterministic render, so memory never grows with the
session's length (one pass when the script's last export left its gain in
the GainMemory and encoding at that gain meets the target, see `_one_pass`):

1. render and measure: integrated loudness (BS.1770, gated, so the long
   silences of a session do not count) and true peak;
2. render again, apply one linear gain that brings the session to
   `options.loudness_lufs`, limit peaks gently only if that gain would push
   the true peak over `options.true_peak_db`, and stream the blocks into
   ffmpeg (measuring what goes out when the limiter works).

With the limiter, the gain that makes up for what it takes off is fitted in
between on re-rendered spans only (`_fit_in_spans`: the hops it touches,
~10 % of a session), not on a whole extra pass. Exports run at
`Options.export_sample_rate` (eSpeak's own 22.05 kHz).

The file is written beside the target under a hidden partial name and moved
into place only when complete (prtvoice.atomic), then transcripts follow.
A batch exports several scripts into one folder with an M3U8 playlist, two
at a time in worker processes.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from prtvoice import atomic, forked, mp3join
from prtvoice.encode import SECOND_HALF, Encoder, Format, encoder_command, format_for
from prtvoice.errors import EncoderError, Interrupted, OutputExistsError
from prtvoice.ffmpeg import find_ffmpeg
from prtvoice.gain_memory import GainMemory, Recalled
from prtvoice.halves import (
    Halves,
    cores,
    encode_halves,
    pause_point,
    plan_halves,
    quiet_point,
    second_path,
)
from prtvoice.loudness import (
    BackgroundMeter,
    LoudnessMeter,
    Measurement,
    PeakLimiter,
    StreamMeter,
    from_db,
    gated_loudness,
)
from prtvoice.options import Options
from prtvoice.pass1 import measure_in_two
from prtvoice.plan import Plan
from prtvoice.tags import chapters_for, ffmetadata, tags_for, write_id3, write_vorbis_chapters
from prtvoice.transcript import render_transcript

if TYPE_CHECKING:
    from prtvoice.early import EarlyEncoders

BlockSource = Callable[[], Iterable[np.ndarray]]
"""Each call starts a fresh, identical stream of float32 (frames, 1) blocks covering the plan."""
Progress = Callable[[int, int], None]

# Lossy decoders overshoot the encoder's input peaks a little (measured on
# eSpeak speech with bells: ~0.2 dB for MP3 at 96k, ~0.8 dB for AAC); aim this much lower.
CODEC_HEADROOM_DB = {"mp3": 0.5, "m4a": 1.0, "opus": 0.6, "ogg": 0.6}
# The limiter looks at samples; keep them this far under the true-peak ceiling
# for the peaks between samples (speech from eSpeak has little energy near Nyquist).
INTERSAMPLE_MARGIN_DB = 0.3
LOUDNESS_TOLERANCE_LU = 0.05  # a limited export lands this close to the target
# A one-pass export at a remembered gain is kept this close: a tenth of the
# smallest loudness step a listener notices (~1 LU), a fifth of EBU R128's ±0.5 LU.
ONE_PASS_TOLERANCE_LU = 0.1
FIT_TOLERANCE_LU = 0.01  # the span fit aims closer still: the encoding pass then never repeats
FIT_STEPS = 5
# The span fit hands half of its spans to a helper process only from this much
# audio to re-render on: a fork costs a few milliseconds.
FIT_FORK_SECONDS = 5.0


@dataclass(frozen=True)
class Loudness:
    """The gain decision of pass 1."""

    measured: Measurement | None  # the render at unity gain (None: not measured, remembered)
    gain_db: float
    limit_db: float | None  # sample ceiling of the limiter in dBFS, None: not needed
    # The output's loudness at this gain and limiter, when known without measuring
    # it (a span fit finds it to ~1e-9 dB): the encoding pass then measures peaks only.
    expected_lufs: float | None = None


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and measured (loudness of the audio that went to the encoder)."""

    path: Path
    format: str
    frames: int
    sample_rate: int
    title: str
    source_lufs: float
    gain_db: float
    limited_frames: int
    loudness_lufs: float
    true_peak_db: float
    transcripts: tuple[Path, ...] = ()
    limiter_pass: bool = False  # the limiter's loss of loudness was measured and made up
    fit_frames: int = 0  # frames re-rendered to fit the limited gain (0: a whole pass, or none)
    measure_seconds: float = 0.0
    encode_seconds: float = 0.0
    passes: int = 2  # over the whole session: 1 when a remembered gain landed (GainMemory)
    encoders: int = 1  # ffmpegs that encoded it at once (2: in halves, prtvoice.halves)

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


class PlanBlocks:
    """The renderer's stream of a plan (unity gain): a BlockSource that can also seek.

    `span(start, end)` gives exactly the samples [start, end) of the full stream
    (the renderer is deterministic and seekable); export uses it to re-render
    only the few spans a limiter would touch.
    """

    def __init__(self, plan: Plan, *, voices, sounds, options: Options) -> None:
        self.plan, self.voices, self.sounds, self.options = plan, voices, sounds, options

    def __call__(self) -> Iterable[np.ndarray]:
        return self.span(0, self.plan.frames)

    def span(self, start: int, end: int) -> Iterable[np.ndarray]:
        from prtvoice.render import render

        return render(
            self.plan,
            voices=self.voices,
            sounds=self.sounds,
            options=self.options,
            start=start,
            end=end,
        )


def blocks_from_plan(plan: Plan, *, voices, sounds, options: Options) -> BlockSource:
    """The renderer's stream of `plan` as a BlockSource (a PlanBlocks: it can seek)."""
    return PlanBlocks(plan, voices=voices, sounds=sounds, options=options)


def target_paths(target: Path, transcripts: Sequence[str]) -> list[Path]:
    """Every file an export writes: the audio, then its transcripts (same stem)."""
    return [target] + [target.with_suffix(f".{kind}") for kind in transcripts]


def check_targets(paths: Iterable[Path], *, force: bool) -> None:
    """Before any work: every target may be written (OutputExistsError, EncoderError)."""
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise OutputExistsError(
            f"{names} already exist{'s' if len(existing) == 1 else ''}; use --force to replace"
        )
    for path in paths:
        atomic.check_target(path, force=True)


def measure(
    blocks: BlockSource,
    *,
    frames: int,
    sample_rate: int,
    progress: Progress | None = None,
    done: int = 0,
    total: int = 0,
) -> Measurement:
    """Pass 1: loudness and true peak of the stream (checks it covers `frames`)."""
    return _measure(
        blocks, frames=frames, sample_rate=sample_rate, progress=progress, done=done, total=total
    )[0]


def _measure(
    blocks: BlockSource,
    *,
    frames: int,
    sample_rate: int,
    progress: Progress | None = None,
    done: int = 0,
    total: int = 0,
    true_peak: bool = True,
) -> tuple[Measurement, LoudnessMeter]:
    """`measure`, also returning its loudness meter (hop energies and hop peaks).

    true_peak=False: the result's true peak is NaN (not measured; the sample peak is).
    """
    meter = StreamMeter(sample_rate=sample_rate, hop_peaks=True, true_peak=true_peak)
    count = 0
    for block in blocks():
        meter.add(block)
        count += len(block)
        if progress:
            progress(done + min(count, frames), total)
    if count != frames:
        raise EncoderError(f"the renderer gave {count} frames, the plan has {frames}")
    result = meter.result()
    if not true_peak:
        result = replace(result, true_peak_db=math.nan)
    return result, meter.loudness


def _true_peak(blocks: BlockSource, *, sample_rate: int) -> float:
    """The stream's true peak (dB), in a pass of its own."""
    meter = StreamMeter(sample_rate=sample_rate, loudness=False)
    for block in blocks():
        meter.add(block)
    return meter.result().true_peak_db


def decide_gain(measured: Measurement, *, options: Options, fmt: Format) -> Loudness:
    """One gain to the loudness target; a limiter ceiling when that gain needs one."""
    if not math.isfinite(measured.loudness_lufs):
        return Loudness(measured, 0.0, None)  # silence: nothing to normalise
    gain_db = options.loudness_lufs - measured.loudness_lufs
    ceiling_db = _ceiling_db(options, fmt)
    # (A true peak not measured, NaN, is one the sample peak put over the ceiling.)
    if measured.true_peak_db + gain_db <= ceiling_db:
        return Loudness(measured, gain_db, None)
    return Loudness(measured, gain_db, ceiling_db - INTERSAMPLE_MARGIN_DB)


def _ceiling_db(options: Options, fmt: Format) -> float:
    """The true peak an export may reach before the codec's own overshoot."""
    return options.true_peak_db - CODEC_HEADROOM_DB.get(fmt.name, 0.0)


def _fit_limited_gain(
    blocks: BlockSource,
    decision: Loudness,
    *,
    target: float,
    frames: int,
    sample_rate: int,
    progress: Progress | None,
    total: int,
) -> tuple[Loudness, tuple[float, float] | None]:
    """The gain to encode with, and the point (gain, loudness) measured on the way.

    The point is None when the first gain already lands on the target. Otherwise
    the returned gain is one step on; the encoding pass measures what it sends
    and `_secant` corrects it if that step missed (a re-encode, rarely needed).
    """
    got = measure_processed(
        blocks,
        decision,
        frames=frames,
        sample_rate=sample_rate,
        progress=progress,
        done=frames,
        total=total,
    ).loudness_lufs
    if not math.isfinite(got) or abs(target - got) <= LOUDNESS_TOLERANCE_LU:
        return decision, None
    return replace(decision, gain_db=decision.gain_db + (target - got)), (decision.gain_db, got)


def _fit_in_spans(
    span: Callable[[int, int], Iterable[np.ndarray]],
    decision: Loudness,
    pass1: LoudnessMeter,
    *,
    target: float,
    frames: int,
    sample_rate: int,
    helpers: bool = False,
) -> tuple[Loudness, tuple[float, float] | None, int]:
    """The limited gain that lands on `target`, re-rendering only what the limiter touches.

    A limiter is scale-free: limiting the stream x gain at ceiling c is limiting
    the stream at c / gain, times gain. At a given gain the limiter changes only
    samples within its reach (20 ms ramp, 30 ms hold: less than one 100 ms hop) of
    a sample over c / gain, so only hops whose peak (known from pass 1) is over it,
    and their neighbours, get new energies: each run of them is re-rendered with a
    hop before it (the K-weighting filter and the limiter settle there, on samples
    the limiter leaves alone) and a hop after (the limiter's look-ahead). Every
    other hop keeps pass 1's energy, so the loudness at that gain is the whole
    stream's (to ~1e-9 dB). Secant steps on the gain, at most FIT_STEPS of them.

    Returns the decision, the last (gain, loudness) point before it (None when
    the first gain landed) and how many frames were re-rendered. `helpers`: half of
    the spans are re-rendered at once by a forked helper (prtvoice.forked).
    """
    hop = pass1.hop
    energies = pass1.hop_energies()
    peaks = pass1.hop_peaks()
    ceiling = from_db(decision.limit_db)
    rendered = 0

    def bounds(first: int, last: int) -> tuple[int, int]:
        # A settling hop before the run, and the look-ahead after it.
        return max(0, first - 1) * hop, min((last + 1) * hop, frames)

    def fresh_energies(runs: list[tuple[int, int]], unity_ceiling: float) -> list[np.ndarray]:
        out = []
        for first, last in runs:
            begin, end = bounds(first, last)
            limiter = PeakLimiter(ceiling=unity_ceiling, sample_rate=sample_rate)
            meter = LoudnessMeter(sample_rate=sample_rate)
            for block in span(begin, end):
                meter.add(limiter.process(block))
            meter.add(limiter.finish())
            skip = first - begin // hop
            out.append(meter.hop_energies()[skip : skip + (last - first)])
        return out

    def loudness_at(gain_db: float) -> float:
        nonlocal rendered
        unity_ceiling = ceiling / from_db(gain_db)
        hops = energies.copy()
        runs = _hot_runs(peaks > unity_ceiling)
        sizes = np.array([end - begin for begin, end in (bounds(*run) for run in runs)], int)
        rendered += int(sizes.sum())
        # Half of the frames to re-render in a helper process (prtvoice.forked).
        cut = int(np.searchsorted(np.cumsum(sizes), sizes.sum() / 2)) if len(runs) else 0
        mine, theirs = forked.both(
            lambda: fresh_energies(runs[:cut], unity_ceiling),
            lambda: fresh_energies(runs[cut:], unity_ceiling),
            fork=helpers and sizes.sum() >= FIT_FORK_SECONDS * sample_rate,
        )  # fmt: skip
        for (first, last), fresh in zip(runs, mine + theirs):
            hops[first:last] = fresh
        return gain_db + gated_loudness(hops, hop=hop)

    gain = decision.gain_db
    got = loudness_at(gain)
    point: tuple[float, float] | None = None
    for _ in range(FIT_STEPS):
        if not math.isfinite(got) or abs(target - got) <= FIT_TOLERANCE_LU:
            break
        step = gain + (target - got) if point is None else _secant(point, (gain, got), target)
        point = (gain, got)
        gain = step
        got = loudness_at(gain)
    return replace(decision, gain_db=gain, expected_lufs=got), point, rendered


def _hot_runs(hot: np.ndarray) -> list[tuple[int, int]]:
    """Hop ranges [first, last) to re-measure: each hot hop with one hop before and two after."""
    n = len(hot)
    if not hot.any():
        return []
    # The limiter's reach (under one hop either way) plus one more hop after, where
    # the K-weighting filter's response to the change has died away (< 1e-10).
    near = hot.copy()
    near[:-1] |= hot[1:]
    near[1:] |= hot[:-1]
    near[2:] |= hot[:-2]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], near.view(np.int8), [0]])))
    return [(int(a), int(min(b, n))) for a, b in zip(edges[::2], edges[1::2])]


def _secant(first: tuple[float, float], second: tuple[float, float], target: float) -> float:
    # Loudness rises by less than the gain once the limiter works: the secant's
    # slope, kept within sane bounds, says by how much.
    (g1, got1), (g2, got2) = first, second
    slope = (got2 - got1) / (g2 - g1) if g2 != g1 else 1.0
    slope = min(1.0, max(0.25, slope))
    return g2 + (target - got2) / slope


def measure_processed(
    blocks: BlockSource,
    decision: Loudness,
    *,
    frames: int,
    sample_rate: int,
    progress: Progress | None = None,
    done: int = 0,
    total: int = 0,
) -> Measurement:
    """Loudness (true peak not measured) of the stream after the decided gain and limiter."""
    limiter = _limiter(decision, sample_rate)
    meter = StreamMeter(sample_rate=sample_rate, true_peak=False)
    count = 0
    gain = np.float32(from_db(decision.gain_db))
    for block in blocks():
        count += len(block)
        block = block * gain
        meter.add(limiter.process(block) if limiter is not None else block)
        if progress:
            progress(done + min(count, frames), total)
    if limiter is not None:
        meter.add(limiter.finish())
    return meter.result()


def _limiter(decision: Loudness, sample_rate: int) -> PeakLimiter | None:
    if decision.limit_db is None:
        return None
    return PeakLimiter(ceiling=from_db(decision.limit_db), sample_rate=sample_rate)


def export_plan(
    plan: Plan,
    *,
    blocks: BlockSource,
    target: Path,
    options: Options,
    force: bool = False,
    transcripts: Sequence[str] = (),
    track: tuple[int, int] | None = None,
    progress: Progress | None = None,
    memory: GainMemory | None = None,
    encoders: int = 2,
    early: EarlyEncoders | None = None,
) -> ExportResult:
    """Export one plan to `target` in `options.format`; see the module docstring.

    With `memory`, a script exported before is first encoded in one pass at
    the gain its last export settled on (kept when what goes out meets the
    target), and every export leaves its gain there for the next one.

    Raises OutputExistsError (target exists, no `force`) before any work,
    EncoderError when ffmpeg lacks the encoder, fails, or the folder cannot
    be written. Nothing is left at the target on failure; an old file there
    survives every failure.

    `encoders`: how many ffmpegs may encode at once; with 2 (and two cores) a long
    MP3 is encoded in halves and joined (prtvoice.halves). `early`: ffmpegs started
    for this export before its script was read (`start_early`); used when they fit
    (the remembered gain's one pass), stopped otherwise, and always taken over.
    """
    target = Path(target)
    fmt = format_for(options.format)
    check_targets(target_paths(target, transcripts), force=force)
    ffmpeg = find_ffmpeg()
    sr = plan.sample_rate
    tags = tags_for(plan, artist=options.artist, album=options.album, track=track)
    chapters = chapters_for(plan)
    key = recalled = None
    if memory is not None:
        key = memory.key(
            script=str(plan.script.path), fmt=fmt.name, sample_rate=sr,
            loudness_lufs=options.loudness_lufs, true_peak_db=options.true_peak_db,
        )  # fmt: skip
        recalled = memory.recall(key)
    if early is not None and not early.fits(target=target, key=key, recalled=recalled, sr=sr):
        early.cancel()
        early = None

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="prtvoice-") as scratch:
        metadata = None
        if fmt.chapters in ("ffmetadata", "vorbis"):
            metadata = Path(scratch) / "metadata.txt"
            own = chapters if fmt.chapters == "ffmetadata" else ()
            metadata.write_text(ffmetadata(tags, own), encoding="utf-8")
        with early.taken_over() if early else atomic.AtomicFile(target, replace=force) as out:
            command = encoder_command(
                ffmpeg=ffmpeg,
                fmt=fmt,
                sample_rate=sr,
                out=out.partial,
                bitrate=options.bitrate,
                metadata_file=metadata,
                tags=tags.as_ffmpeg() if fmt.chapters == "none" else None,
            )
            two = _two_encoders(
                plan, blocks, fmt, encoders=encoders, out=out.partial,
                command_for=functools.partial(
                    encoder_command, ffmpeg=ffmpeg, fmt=fmt, sample_rate=sr,
                    bitrate=options.bitrate,
                ),
            )  # fmt: skip
            landed = None
            if recalled is not None:
                started_early = (None, None)
                if early is not None:
                    started_early = early.take(command, two.command if two else None)
                landed = _one_pass(
                    blocks, recalled, command=command, frames=plan.frames, sample_rate=sr,
                    options=options, fmt=fmt, progress=progress, two=two, started=started_early,
                )  # fmt: skip
            if landed is not None:
                outcome = landed
            else:
                outcome = _two_passes(
                    blocks, command=command, frames=plan.frames, sample_rate=sr,
                    options=options, fmt=fmt, progress=progress, two=two, helpers=encoders >= 2,
                    done=plan.frames if recalled is not None else 0,
                )  # fmt: skip
                if recalled is not None:  # the pass that missed counts too
                    outcome = replace(outcome, passes=outcome.passes + 1)
            if fmt.name == "mp3" and outcome.encoders == 1:
                # (A joined file's tag already says its exact length.)
                with contextlib.suppress(mp3join.JoinError):
                    mp3join.set_length(out.partial, plan.frames)
            if fmt.chapters == "id3":
                write_id3(out.partial, tags, chapters)
            elif fmt.chapters == "vorbis" and chapters:
                write_vorbis_chapters(out.partial, chapters)
            out.commit()
    if memory is not None and key is not None and math.isfinite(outcome.result.loudness_lufs):
        memory.remember(key, Recalled(outcome.decision.gain_db, outcome.decision.limit_db))
    written = [
        atomic_text(
            target.with_suffix(f".{kind}"),
            render_transcript(kind, plan, artist=options.artist, album=options.album),
            replace=force,
        )
        for kind in transcripts
    ]
    finished = time.perf_counter()
    decision, result = outcome.decision, outcome.result
    return ExportResult(
        path=target,
        format=fmt.name,
        frames=plan.frames,
        sample_rate=sr,
        title=plan.script.title,
        source_lufs=outcome.source_lufs,
        gain_db=decision.gain_db,
        limited_frames=outcome.limited_frames,
        loudness_lufs=result.loudness_lufs,
        true_peak_db=result.true_peak_db,
        transcripts=tuple(written),
        limiter_pass=outcome.limiting,
        fit_frames=outcome.fit_frames,
        measure_seconds=outcome.measured_at - started if outcome.measured_at else 0.0,
        encode_seconds=finished - (outcome.measured_at or started),
        passes=outcome.passes,
        encoders=outcome.encoders,
    )


@dataclass(frozen=True)
class _Outcome:
    """How the audio of an export was made (see export_plan)."""

    decision: Loudness
    result: Measurement  # of what went to the encoder
    limited_frames: int  # samples the limiter turned down
    source_lufs: float
    passes: int  # passes over the session (measuring, fitting spans aside, and encoding)
    limiting: bool = False
    fit_frames: int = 0
    measured_at: float | None = None  # perf_counter when the measuring was done
    encoders: int = 1  # 2: encoded in halves on two cores (prtvoice.halves)


@dataclass(frozen=True)
class _TwoEncoders:
    """How an MP3 export may encode in halves on two cores (prtvoice.halves)."""

    halves: Halves  # planned at the middle; re-planned at a quiet point once measured
    command: list[str]  # the second half's ffmpeg
    first: Path  # the file the first half's ffmpeg writes (the export's partial file)
    second: Path  # the file the second half's writes (beside the first, a partial file too)


def _two_encoders(
    plan: Plan, blocks: BlockSource, fmt: Format, *, encoders: int, out: Path,
    command_for: Callable[..., list[str]],
) -> _TwoEncoders | None:  # fmt: skip
    """Halves for this export, or None: one ffmpeg (not MP3, too short, one core ...)."""
    span = getattr(blocks, "span", None)
    if encoders < 2 or fmt.name != "mp3" or span is None or cores() < 2:
        return None
    quiet = pause_point(plan.events, frames=plan.frames, sample_rate=plan.sample_rate)
    halves = plan_halves(plan.frames, sample_rate=plan.sample_rate, quiet=quiet)
    if halves is None:
        return None
    second = second_path(out)
    return _TwoEncoders(halves, command_for(out=second, overrides=SECOND_HALF), out, second)


def _in_halves(
    blocks: BlockSource,
    decision: Loudness,
    two: _TwoEncoders,
    halves: Halves,
    *,
    command: list[str],
    started: Sequence[Encoder | None] = (None, None),
    meter: str,
    sample_rate: int,
    progress: Progress | None,
    done: int,
    total: int,
) -> tuple[Measurement | None, int] | None:
    """Encode in two halves and join them; None when they cannot be joined (encode in one).

    Returns what went out (when `meter` is not "none") and the limited frames.
    """
    first, second = started
    encoders = [first or Encoder(command)]
    try:
        encoders.append(second or Encoder(two.command))
        limit = from_db(decision.limit_db) if decision.limit_db is not None else None
        measured, limited = encode_halves(
            blocks.span, halves, gain_db=decision.gain_db, limit=limit, encoders=encoders,
            sample_rate=sample_rate, meter=meter, progress=progress, done=done, total=total,
        )  # fmt: skip
        mp3join.join(
            two.first, two.second, offset_frames=halves.offset_frames, cuts=halves.cuts,
            samples=halves.frames,
        )  # fmt: skip
    except mp3join.JoinError:
        return None
    except BaseException:
        for encoder in encoders:
            encoder.kill()
        raise
    finally:
        with contextlib.suppress(OSError):
            two.second.unlink()
    return measured, limited


def _one_pass(
    blocks: BlockSource,
    recalled: Recalled,
    *,
    command: list[str],
    frames: int,
    sample_rate: int,
    options: Options,
    fmt: Format,
    progress: Progress | None,
    two: _TwoEncoders | None = None,
    started: Sequence[Encoder | None] = (None, None),
) -> _Outcome | None:
    """Encode at a remembered gain, measuring what goes out; None when it missed the target.

    In one ffmpeg the meter runs on its own thread (BackgroundMeter), beside
    rendering and encoding (numpy's FFTs let other threads run); in halves each
    half's thread measures its own. The file meets the target when its loudness
    is within ONE_PASS_TOLERANCE_LU and its true peak under the format's ceiling;
    the caller then encodes again, measured first.
    """
    decision = Loudness(None, recalled.gain_db, recalled.limit_db)
    done = None
    first = started[0]
    if two is not None:
        done = _in_halves(
            blocks, decision, two, two.halves, command=command, started=started, meter="full",
            sample_rate=sample_rate, progress=progress, done=0, total=frames,
        )  # fmt: skip
        first = None  # used by the halves, joined or not
    elif started[1] is not None:
        started[1].kill()  # no halves after all (a short session)
    if done is not None:
        result, limited = done
        assert result is not None
    else:
        meter = BackgroundMeter(sample_rate=sample_rate)
        try:
            _, limiter = _encode(
                blocks, decision, command=command, frames=frames, sample_rate=sample_rate,
                progress=progress, done=0, total=frames, meter=meter, started=first,
            )  # fmt: skip
            result = meter.result()
        except BaseException:
            meter.cancel()
            raise
        limited = limiter.reduced_frames if limiter is not None else 0
    if (
        not math.isfinite(result.loudness_lufs)
        or abs(options.loudness_lufs - result.loudness_lufs) > ONE_PASS_TOLERANCE_LU
        or result.true_peak_db > _ceiling_db(options, fmt)
    ):
        return None
    # Without the limiter this is exact; with it, the loudness it took off counts too.
    source = result.loudness_lufs - decision.gain_db
    return _Outcome(
        decision, result, limited, source, passes=1, limiting=decision.limit_db is not None,
        encoders=2 if done is not None else 1,
    )  # fmt: skip


def _two_passes(
    blocks: BlockSource, *, command: list[str], two: _TwoEncoders | None = None, **kwargs
) -> _Outcome:
    """Measure the session, decide the gain (fitting it under the limiter), encode."""
    # ffmpeg takes ~0.12 s to start before it encodes anything (it links some 200
    # libraries). Started now, it does that on the core pass 1 leaves idle, then
    # waits for its input, instead of holding up the encoding pass.
    started = [Encoder(command)]
    try:
        if two is not None:
            started.append(Encoder(two.command))
        return _measure_then_encode(blocks, command=command, started=started, two=two, **kwargs)
    finally:
        for encoder in started:
            encoder.kill()  # nothing left to do once the encoding pass has closed it
        if two is not None:
            with contextlib.suppress(OSError):
                two.second.unlink()  # (a second half not encoded after all)


def _measure_then_encode(
    blocks: BlockSource,
    *,
    command: list[str],
    started: list[Encoder],
    two: _TwoEncoders | None,
    frames: int,
    sample_rate: int,
    options: Options,
    fmt: Format,
    progress: Progress | None,
    done: int,
    helpers: bool = False,
) -> _Outcome:
    """Pass 1, the gain, the encoding pass(es). `helpers`: pass 1 may take a second
    core (a forked helper, prtvoice.pass1)."""
    sr = sample_rate
    total = done + 2 * frames
    limiting = False
    fit_frames = 0
    # The true peak (~40 % of a measuring pass) only tells whether the gain needs
    # the limiter; the sample peak (a lower bound of it) usually says so already:
    # eSpeak's peaks stand ~19 dB over its loudness. Measured apart only otherwise.
    span = getattr(blocks, "span", None)
    split = None
    if helpers and span is not None:  # the second half on the other core (prtvoice.pass1)
        split = measure_in_two(
            span, frames=frames, sample_rate=sr, progress=progress, done=done, total=total
        )
    measured, pass1 = split or _measure(
        blocks, frames=frames, sample_rate=sr, progress=progress, done=done, total=total,
        true_peak=False,
    )  # fmt: skip
    passes = 1
    gain_db = options.loudness_lufs - measured.loudness_lufs
    if not (math.isfinite(gain_db) and measured.sample_peak_db + gain_db > _ceiling_db(options, fmt)):
        measured = replace(measured, true_peak_db=_true_peak(blocks, sample_rate=sr))
    decision = decide_gain(measured, options=options, fmt=fmt)
    point: tuple[float, float] | None = None
    if decision.limit_db is not None and span is not None:
        # Limiting takes some loudness off the peaks, the more the higher the gain:
        # find the gain that makes up for it on the few spans the limiter touches.
        # The fit also finds the output's loudness (expected_lufs), so the encoding
        # pass measures only its peaks.
        limiting = True
        decision, point, fit_frames = _fit_in_spans(
            span, decision, pass1, target=options.loudness_lufs, frames=frames, sample_rate=sr,
            helpers=helpers,
        )  # fmt: skip
    elif decision.limit_db is not None:
        # Limiting takes some loudness off the peaks, the more the higher the
        # gain. Measure the limited stream (loudness only, no encoding) and
        # correct the gain by one step; the encoding pass measures the result,
        # and only if it missed is the file encoded again (a secant step).
        limiting = True
        total += frames
        passes += 1
        decision, point = _fit_limited_gain(
            blocks, decision, target=options.loudness_lufs, frames=frames, sample_rate=sr,
            progress=progress, total=total,
        )  # fmt: skip
    measured_at = time.perf_counter()
    encoded_from = total - frames
    expected = decision.expected_lufs is not None and math.isfinite(decision.expected_lufs)
    if two is not None and (expected or decision.limit_db is None):
        # Cut where pass 1 found the session quietest near its middle: a pause,
        # where both encoders surely use long windows.
        quiet = quiet_point(pass1.hop_peaks(), hop=pass1.hop, frames=frames)
        halves = plan_halves(frames, sample_rate=sr, quiet=quiet) or two.halves
        got = _in_halves(
            blocks, decision, two, halves, command=command, started=started,
            meter="peaks" if expected else "none", sample_rate=sr, progress=progress,
            done=encoded_from, total=total,
        )  # fmt: skip
        started = []  # used (and closed) by the halves, joined or not
        if got is not None:
            result, limited = got
            if result is None:  # one linear gain: the output is pass 1's audio x gain
                result = _scaled(measured, decision.gain_db)
            else:
                result = replace(result, loudness_lufs=decision.expected_lufs)
            return _Outcome(
                decision, result, limited, measured.loudness_lufs, passes=passes + 1,
                limiting=limiting, fit_frames=fit_frames, measured_at=measured_at, encoders=2,
            )  # fmt: skip
    first = started[0] if started else None
    for extra in started[1:]:
        extra.kill()  # a second half's ffmpeg not needed after all
    if expected:
        # The span fit found the output's loudness: K-weighting the encoding pass
        # again would only repeat it (and took as long as the encoder at 20 min).
        peaks = StreamMeter(sample_rate=sr, loudness=False)
        _, limiter = _encode(
            blocks, decision, command=command, frames=frames, sample_rate=sr,
            progress=progress, done=encoded_from, total=total, meter=peaks, started=first,
        )  # fmt: skip
        result = replace(peaks.result(), loudness_lufs=decision.expected_lufs)
        return _Outcome(
            decision, result, _limited(limiter), measured.loudness_lufs, passes=passes + 1,
            limiting=limiting, fit_frames=fit_frames, measured_at=measured_at,
        )  # fmt: skip
    while True:
        passes += 1
        result, limiter = _encode(
            blocks, decision, command=command, frames=frames, sample_rate=sr,
            progress=progress, done=encoded_from, total=total, started=first,
        )  # fmt: skip
        first = None  # a second encoding (the secant step) starts its own
        if result is None:  # one linear gain: the output is pass 1's audio x gain
            result = _scaled(measured, decision.gain_db)
        got = result.loudness_lufs
        if point is None or not math.isfinite(got):
            break
        if abs(options.loudness_lufs - got) <= LOUDNESS_TOLERANCE_LU:
            break
        gain_db = _secant(point, (decision.gain_db, got), options.loudness_lufs)
        point = None  # one correction, as before: the secant lands it
        decision = replace(decision, gain_db=gain_db)
        encoded_from, total = total, total + frames
    return _Outcome(
        decision, result, _limited(limiter), measured.loudness_lufs, passes=passes,
        limiting=limiting, fit_frames=fit_frames, measured_at=measured_at,
    )  # fmt: skip


def _limited(limiter: PeakLimiter | None) -> int:
    return limiter.reduced_frames if limiter is not None else 0


def _scaled(measured: Measurement, gain_db: float) -> Measurement:
    """What pass 1 measured, after a linear gain: exact up to float32 rounding (~1e-6 dB)."""
    return replace(
        measured,
        loudness_lufs=measured.loudness_lufs + gain_db,
        true_peak_db=measured.true_peak_db + gain_db,
        sample_peak_db=measured.sample_peak_db + gain_db,
    )


def _encode(
    blocks: BlockSource,
    decision: Loudness,
    *,
    command: list[str],
    frames: int,
    sample_rate: int,
    progress: Progress | None,
    done: int,
    total: int,
    meter: StreamMeter | BackgroundMeter | None = None,
    started: Encoder | None = None,
) -> tuple[Measurement | None, PeakLimiter | None]:
    """One pass: gain, limiter, into ffmpeg (`started`, or a new one running `command`).

    With the limiter, measures exactly what goes out; without it the output
    is the measured stream times one gain, so nothing is measured (None).
    A `meter` given is fed what goes out (its result is the caller's to take).
    """
    gain = np.float32(from_db(decision.gain_db))
    limiter = _limiter(decision, sample_rate)
    given = meter is not None
    if meter is None and limiter is not None:
        meter = StreamMeter(sample_rate=sample_rate)
    with started if started is not None else Encoder(command) as encoder:
        count = 0
        for block in blocks():
            # float32 multiply: the same rounding every run (deterministic files).
            block = block * gain
            if limiter is not None:
                block = limiter.process(block)
            _send(encoder, meter, block)
            count += len(block)
            if progress:
                progress(done + min(count, frames), total)
        if limiter is not None:
            _send(encoder, meter, limiter.finish())
    if given or meter is None:
        return None, limiter
    assert isinstance(meter, StreamMeter)
    return meter.result(), limiter


def _send(
    encoder: Encoder, meter: StreamMeter | BackgroundMeter | None, block: np.ndarray
) -> None:
    if len(block):
        if meter is not None:
            meter.add(block)
        encoder.write(block)


def atomic_text(path: Path, text: str, *, replace: bool) -> Path:
    atomic.write_text(path, text, replace=replace)
    return path


# ---------------------------------------------------------------------------
# Batches


@dataclass
class Prepared:
    """A planned script ready to render; `close` frees its voice bank."""

    plan: Plan
    blocks: BlockSource
    close: Callable[[], None] | None = None
    memory: GainMemory | None = None  # where export_plan recalls and leaves the gain


Prepare = Callable[[str], Prepared]
"""Loads, plans and readies one script for rendering (runs in a worker process)."""


@dataclass(frozen=True)
class ScriptPreparer:
    """The usual Prepare: load SCRIPT with the user's values, build the banks, plan it.

    Plans at `options.for_export()` (the export rate, whatever `options` says).
    A plain dataclass, so it pickles into batch worker processes.
    """

    options: Options
    sets: tuple[tuple[str, str], ...] = ()
    vars_file: Path | None = None
    minutes: float | None = None

    def __call__(self, source: str, *, engine=None) -> Prepared:
        """Prepare `source`; `engine`: the configured speech engine, made (and its worker
        started) earlier by the caller, who leaves it to the result's `close`."""
        from prtvoice import session
        from prtvoice.config import load_config

        options = self.options.for_export()
        try:
            script = session.load(source, sets=dict(self.sets), vars_file=self.vars_file)
        except BaseException:
            if engine is not None:
                engine.close()
            raise
        voices = session.voice_bank(load_config(), options, engine=engine)
        try:
            sounds = session.sound_bank(options)
            plan = session.make_plan(
                script, voices=voices, sounds=sounds, options=options, minutes=self.minutes
            )
        except BaseException:
            voices.close()
            raise
        blocks = blocks_from_plan(plan, voices=voices, sounds=sounds, options=options)
        return Prepared(plan, blocks, voices.close, session.gain_memory())


@dataclass(frozen=True)
class BatchJob:
    """One script of a batch and where it goes."""

    source: str
    target: Path
    track: tuple[int, int]


@dataclass(frozen=True)
class BatchResult:
    results: tuple[ExportResult, ...]
    playlist: Path
    seconds: float = 0.0
    workers: int = 1
    extra: dict = field(default_factory=dict)


def batch_jobs(sources: Sequence[str | Path], *, folder: Path, fmt: Format) -> list[BatchJob]:
    """Targets in `folder` named `NN-stem.ext` (NN keeps the order in every file list)."""
    total = len(sources)
    width = max(2, len(str(total)))
    jobs = []
    seen: set[str] = set()
    for number, source in enumerate(sources, start=1):
        stem = Path(str(source)).stem
        name = f"{number:0{width}d}-{stem}{fmt.suffix}"
        if name in seen:  # pragma: no cover - numbers make names unique
            raise EncoderError(f"two scripts would both be exported as {name}")
        seen.add(name)
        jobs.append(BatchJob(str(source), folder / name, (number, total)))
    return jobs


def playlist_path(folder: Path) -> Path:
    return folder / f"{folder.resolve().name or 'prtvoice'}.m3u8"


def m3u8(results: Sequence[ExportResult], *, folder: Path, artist: str) -> str:
    """An extended M3U playlist (UTF-8) with paths relative to `folder`."""
    lines = ["#EXTM3U"]
    for result in results:
        title = " ".join(result.title.split()).replace(",", " ")
        lines.append(f"#EXTINF:{round(result.seconds)},{artist} - {title}")
        lines.append(os.path.relpath(result.path, folder).replace(os.sep, "/"))
    return "\n".join(lines) + "\n"


def _worker_init() -> None:
    # A terminated worker cleans up its partial file like the main process does.
    import signal

    def handler(signum, frame):
        raise Interrupted("stopped by SIGTERM")

    signal.signal(signal.SIGTERM, handler)


def _export_job(
    prepare: Prepare,
    job: BatchJob,
    options: Options,
    force: bool,
    transcripts: tuple[str, ...],
    encoders: int = 2,
) -> ExportResult:
    prepared = prepare(job.source)
    try:
        return export_plan(
            prepared.plan,
            blocks=prepared.blocks,
            target=job.target,
            options=options,
            force=force,
            transcripts=transcripts,
            track=job.track,
            memory=prepared.memory,
            encoders=encoders,
        )
    finally:
        if prepared.close is not None:
            prepared.close()


def export_batch(
    jobs: Sequence[BatchJob],
    *,
    prepare: Prepare,
    folder: Path,
    options: Options,
    force: bool = False,
    transcripts: Sequence[str] = (),
    workers: int = 2,
    progress: Progress | None = None,
) -> BatchResult:
    """Export every job into `folder`, then write the playlist.

    With `workers` > 1, scripts export in that many worker processes
    (`prepare` must then be picklable: a module-level function); progress
    then counts finished scripts, not frames. Every target (and the
    playlist) is checked before any work.
    """
    folder = Path(folder)
    playlist = playlist_path(folder)
    every = [playlist]
    for job in jobs:
        every += target_paths(job.target, transcripts)
    check_targets(every, force=force)
    started = time.perf_counter()
    transcripts = tuple(transcripts)
    results: dict[int, ExportResult] = {}
    if workers <= 1 or len(jobs) <= 1:
        for index, job in enumerate(jobs):
            results[index] = _export_job(prepare, job, options, force, transcripts)
            if progress:
                progress(index + 1, len(jobs))
    else:
        results = _run_pool(
            jobs,
            prepare=prepare,
            options=options,
            force=force,
            transcripts=transcripts,
            workers=workers,
            progress=progress,
        )
    ordered = tuple(results[i] for i in range(len(jobs)))
    atomic.write_text(playlist, m3u8(ordered, folder=folder, artist=options.artist), replace=force)
    return BatchResult(
        ordered, playlist, time.perf_counter() - started, workers=min(workers, len(jobs)) or 1
    )


def _run_pool(jobs, *, prepare, options, force, transcripts, workers, progress):
    results: dict[int, ExportResult] = {}
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=_worker_init)
    try:
        # Two scripts export at once, each on a core: one ffmpeg each.
        pending = {
            pool.submit(_export_job, prepare, job, options, force, transcripts, 1): index
            for index, job in enumerate(jobs)
        }
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                results[index] = future.result()  # re-raises the worker's error
                if progress:
                    progress(len(results), len(jobs))
    except BaseException:
        # Stop the other workers too; each removes its partial file on SIGTERM.
        # (_processes is the executor's own map of worker processes.)
        for process in list(getattr(pool, "_processes", {}).values()):
            if process.is_alive():
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results
