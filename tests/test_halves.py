"""An MP3 export in halves on two cores: the samples, the meters, the file, the failures.

The units run on synthetic streams; the exports on a real ~2 min plan (eSpeak
NG speech, the real renderer, real ffmpeg), with and without an ambience bed
(with one, the session is never silent where the halves meet).
"""

from __future__ import annotations

import threading

import mutagen.id3
import numpy as np
import pyloudnorm
import pytest
from export_helpers import decode, make_plan, session_script

from prtvoice import export as exporting
from prtvoice import halves as halving
from prtvoice import mp3join
from prtvoice.early import start_early
from prtvoice.errors import EncoderError
from prtvoice.gain_memory import GainMemory, Recalled
from prtvoice.loudness import PeakLimiter, StreamMeter, from_db, joined
from prtvoice.options import Options
from prtvoice.sounds import SoundBank

SR = Options().export_sample_rate


def loud_stream(frames: int, seed: int = 3) -> np.ndarray:
    """Noise with bursts over any sensible ceiling, some of them right where halves meet."""
    rng = np.random.default_rng(seed)
    x = 0.05 * rng.standard_normal(frames)
    for at in [*rng.integers(0, frames - 500, 40), frames // 2 - 100]:
        x[at : at + 300] += 0.9 * np.sin(np.arange(300) * 0.7)
    return x.astype(np.float32)


class ArraySpan:
    """A BlockSource over an array (blocks of 8192 frames, any span)."""

    def __init__(self, samples: np.ndarray):
        self.samples = samples

    def __call__(self):
        return self.span(0, len(self.samples))

    def span(self, start, end):
        for at in range(start, end, 8192):
            yield self.samples[at : min(end, at + 8192)].reshape(-1, 1)


class Capture:
    """Stands in for an ffmpeg: keeps what it is sent."""

    def __init__(self):
        self.parts: list[np.ndarray] = []
        self.closed = self.killed = False

    def write(self, block):
        self.parts.append(np.asarray(block, dtype=np.float32).reshape(-1).copy())

    def close(self):
        self.closed = True

    def kill(self):
        self.killed = True

    @property
    def samples(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)


def test_a_stream_measured_in_two_parts_measures_as_one():
    x = (0.05 * np.random.default_rng(5).standard_normal(SR * 30)).astype(np.float32)
    split = 130 * round(0.1 * SR)  # a hop boundary
    x[split - 40 : split + 40] = 0.9 * np.sign(np.sin(np.arange(80)))  # the peaks, across it
    whole = StreamMeter(sample_rate=SR)
    whole.add(x.reshape(-1, 1))
    one = StreamMeter(sample_rate=SR)
    one.add(x[:split].reshape(-1, 1))
    two = StreamMeter(sample_rate=SR, history=x[split - 2205 : split])
    two.add(x[split:].reshape(-1, 1))
    got, want = joined(one, two, after=x[split : split + 64]), whole.result()
    assert got.frames == want.frames
    assert abs(got.loudness_lufs - want.loudness_lufs) < 1e-6
    assert abs(got.true_peak_db - want.true_peak_db) < 1e-9
    assert got.sample_peak_db == want.sample_peak_db
    # Without the neighbouring samples the true peak at the split comes out wrong.
    bare_one, bare_two = StreamMeter(sample_rate=SR), StreamMeter(sample_rate=SR)
    bare_one.add(x[:split].reshape(-1, 1))
    bare_two.add(x[split:].reshape(-1, 1))
    assert abs(joined(bare_one, bare_two, after=np.zeros(0)).true_peak_db - want.true_peak_db) > 1e-3


def test_a_limiter_counts_only_its_share():
    x = loud_stream(SR * 10)
    whole = PeakLimiter(ceiling=0.5, sample_rate=SR)
    whole.process(x)
    whole.finish()
    first, second = PeakLimiter(ceiling=0.5, sample_rate=SR), PeakLimiter(ceiling=0.5, sample_rate=SR)
    first.count_until = second.count_from = SR * 4
    for limiter in (first, second):
        limiter.process(x)
        limiter.finish()
    assert whole.reduced_frames > 0 and 0 < first.reduced_frames < whole.reduced_frames
    assert first.reduced_frames + second.reduced_frames == whole.reduced_frames


def test_halves_are_planned_on_the_frame_grid_with_room_for_the_join():
    assert halving.plan_halves(SR * 60, sample_rate=SR) is None  # short: one encoder
    assert halving.plan_halves(SR * 600, sample_rate=44100) is None  # MPEG-1: not handled
    frames = SR * 600 + 77
    for quiet in (None, SR * 270, SR * 333):
        h = halving.plan_halves(frames, sample_rate=SR, quiet=quiet)
        assert h is not None
        point = frames // 2 if quiet is None else quiet
        assert abs(mp3join.FRAME * h.cut - 1105 - point) < mp3join.FRAME  # cut at the quiet point
        assert h.second_start % mp3join.FRAME == 0 and h.meter_split % h.hop == 0
        assert 0 <= h.render_start < h.second_start <= h.meter_split
        assert h.meter_split + 64 < h.first_end < frames
        # every cut the join may choose has the first encoder's look-ahead and the
        # second's pre-roll around it
        assert h.cuts.start - h.offset_frames >= halving.PREROLL
        assert mp3join.FRAME * (h.cuts.stop + halving.TAIL) <= h.first_end


def test_the_quiet_point_is_a_pause_near_the_middle():
    peaks = np.full(1000, 0.5)
    peaks[430:436] = 0.0
    peaks[700:800] = 0.0  # quieter, but far from the middle
    assert 430 * 100 <= halving.quiet_point(peaks, hop=100, frames=100_000) < 436 * 100
    plan = make_plan(session_script(10), _Voices(), SoundBank(sample_rate=SR), Options().for_export())
    point = halving.pause_point(plan.events, frames=plan.frames, sample_rate=SR)
    assert point is not None and abs(point - plan.frames // 2) <= 0.1 * plan.frames
    assert any(e.kind == "pause" and e.start < point < e.end for e in plan.events)


class _Voices:
    def frames(self, text, voice, language):
        return SR * 3

    def clip(self, text, voice, language):
        return np.zeros((SR * 3, 1), np.float32)


@pytest.mark.parametrize("meter", ["full", "peaks", "none"])
def test_each_half_gets_exactly_what_one_encoder_would(meter):
    frames = SR * 150 + 123
    x = loud_stream(frames)
    h = halving.plan_halves(frames, sample_rate=SR)
    # The loudest moment straddles the meters' split: the second meter must settle
    # on what came before it, the first must see what follows.
    at = h.meter_split
    x[at - 150 : at + 150] = 0.99 * np.sign(np.sin(np.arange(300) * 1.3))
    blocks = ArraySpan(x)
    gain_db, limit = 2.0, 0.6
    encoders = [Capture(), Capture()]
    measured, limited = halving.encode_halves(
        blocks.span, h, gain_db=gain_db, limit=limit, encoders=encoders, sample_rate=SR,
        meter=meter,
    )  # fmt: skip
    # The one-encoder stream: gain, then one limiter over the whole.
    one = PeakLimiter(ceiling=limit, sample_rate=SR)
    scaled = x * np.float32(from_db(gain_db))
    want = np.concatenate([one.process(scaled).reshape(-1), one.finish().reshape(-1)])
    first, second = encoders[0].samples, encoders[1].samples
    assert len(first) == h.first_end and len(second) == frames - h.second_start
    # The limiter's output depends on how blocks fall only by float rounding.
    assert np.abs(first[: h.meter_split] - want[: h.meter_split]).max() < 1e-6
    assert np.abs(second - want[h.second_start :]).max() < 1e-6
    assert all(e.closed and not e.killed for e in encoders)
    assert abs(limited - one.reduced_frames) <= 2
    if meter == "none":
        assert measured is None
        return
    whole = StreamMeter(sample_rate=SR, loudness=meter == "full")
    whole.add(want.reshape(-1, 1))
    expect = whole.result()
    assert measured.frames == frames
    assert abs(measured.true_peak_db - expect.true_peak_db) < 1e-5
    if meter == "full":
        assert abs(measured.loudness_lufs - expect.loudness_lufs) < 1e-5
    else:
        assert np.isnan(measured.loudness_lufs)


@pytest.mark.parametrize("offset", [-1, 0], ids=["first-meters", "second-meters"])
def test_a_true_peak_at_the_split_is_found(offset):
    # The largest peak between samples lies just before the split (the first meter
    # finds it, from the samples after its part) or just after it (the second, from
    # the samples before its part), within the interpolation filter's reach.
    frames = SR * 150
    x = (0.05 * np.random.default_rng(9).standard_normal(frames)).astype(np.float32)
    h = halving.plan_halves(frames, sample_rate=SR)
    at = h.meter_split
    x[at + offset - 1 : at + offset + 3] = [-0.9, 0.9, 0.9, -0.9]
    measured, _ = halving.encode_halves(
        ArraySpan(x).span, h, gain_db=0.0, limit=None, encoders=[Capture(), Capture()],
        sample_rate=SR, meter="peaks",
    )  # fmt: skip
    whole = StreamMeter(sample_rate=SR, loudness=False)
    whole.add(x.reshape(-1, 1))
    expect = whole.result()
    assert expect.true_peak_db > expect.sample_peak_db + 3  # between the two 0.9s
    assert abs(measured.true_peak_db - expect.true_peak_db) < 1e-9


def test_a_failing_half_stops_both_and_the_thread():
    frames = SR * 150
    x = loud_stream(frames)
    h = halving.plan_halves(frames, sample_rate=SR)

    def span(start, end):
        for index, block in enumerate(ArraySpan(x).span(start, end)):
            if start > 0 and index == 20:
                raise OSError("disk gone")
            yield block

    encoders = [Capture(), Capture()]
    before = threading.active_count()
    with pytest.raises(OSError, match="disk gone"):
        halving.encode_halves(span, h, gain_db=0.0, limit=None, encoders=encoders,
                              sample_rate=SR, meter="full")  # fmt: skip
    assert all(e.killed and not e.closed for e in encoders)
    assert threading.active_count() == before


# -- real exports ------------------------------------------------------------


def test_a_long_mp3_is_encoded_in_halves_into_one_exact_file(long_real, tmp_path):
    plan, blocks, options = long_real
    halves = exporting.export_plan(plan, blocks=blocks, target=tmp_path / "h.mp3", options=options)
    one = exporting.export_plan(
        plan, blocks=blocks, target=tmp_path / "one.mp3", options=options, encoders=1
    )
    assert (halves.encoders, one.encoders) == (2, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.mp3", "one.mp3"]
    y, z = decode(tmp_path / "h.mp3", sample_rate=SR), decode(tmp_path / "one.mp3", sample_rate=SR)
    assert len(y) == plan.frames  # exactly the plan's samples
    n = min(len(y), len(z))
    differ = np.flatnonzero(y[:n] != z[:n])
    # Identical up to the cut, which is near the middle; after it, another encode
    # of the same samples: differences at the level of the codec's own noise.
    assert abs(differ[0] - plan.frames / 2) < 0.15 * plan.frames
    noise = np.sqrt(np.mean((y[:n] - z[:n]) ** 2)) / np.sqrt(np.mean(z[:n] ** 2))
    assert noise < 0.02  # under -34 dB
    # The same measurement and the same loudness on the decoded file.
    assert halves.gain_db == one.gain_db
    assert abs(halves.true_peak_db - one.true_peak_db) < 0.01
    meter = pyloudnorm.Meter(SR)
    assert abs(meter.integrated_loudness(y.astype(np.float64)) - options.loudness_lufs) < 0.5
    # Tags and chapters were written on the joined file.
    tags = mutagen.id3.ID3(tmp_path / "h.mp3")
    assert len(tags.getall("CHAP")) == len(plan.sections)
    assert tags["TIT2"].text == [plan.script.title]


def test_a_reexport_at_a_remembered_gain_is_one_pass_in_halves(long_real, tmp_path):
    plan, blocks, options = long_real
    memory = GainMemory(tmp_path / "gains")
    first = exporting.export_plan(
        plan, blocks=blocks, target=tmp_path / "a.mp3", options=options, memory=memory
    )
    again = exporting.export_plan(
        plan, blocks=blocks, target=tmp_path / "b.mp3", options=options, memory=memory
    )
    assert (first.passes, again.passes, again.encoders) == (2, 1, 2)
    assert abs(again.loudness_lufs - options.loudness_lufs) <= exporting.ONE_PASS_TOLERANCE_LU
    assert abs(again.true_peak_db - first.true_peak_db) < 0.01
    assert len(decode(tmp_path / "b.mp3", sample_rate=SR)) == plan.frames


def test_halves_that_cannot_be_joined_are_encoded_in_one_piece(long_real, tmp_path, monkeypatch):
    plan, blocks, options = long_real

    def refuse(*args, **kwargs):
        raise mp3join.JoinError("no cut between frames whose windows fit")

    monkeypatch.setattr(mp3join, "join", refuse)
    result = exporting.export_plan(plan, blocks=blocks, target=tmp_path / "s.mp3", options=options)
    assert result.encoders == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mp3"]
    assert abs(len(decode(tmp_path / "s.mp3", sample_rate=SR)) - plan.frames) < 1152


def test_a_failing_second_ffmpeg_fails_the_export_and_keeps_the_old_file(
    long_real, tmp_path, monkeypatch
):
    plan, blocks, options = long_real
    monkeypatch.setattr(exporting, "SECOND_HALF", ("-no_such_option", "1"))
    target = tmp_path / "s.mp3"
    target.write_bytes(b"old file")
    with pytest.raises(EncoderError, match="ffmpeg"):
        exporting.export_plan(plan, blocks=blocks, target=target, options=options, force=True)
    assert target.read_bytes() == b"old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mp3"]


def test_an_interrupt_in_the_halves_leaves_nothing(long_real, tmp_path):
    plan, blocks, options = long_real
    target = tmp_path / "s.mp3"
    seen = []

    def progress(done, total):
        if done > 1.5 * plan.frames:  # well into the encoding pass
            # the second half's file sits beside the first's partial, named after it
            seen.extend(p.name for p in tmp_path.glob(".s.mp3.partial-*-second"))
            raise KeyboardInterrupt

    before = threading.active_count()
    with pytest.raises(KeyboardInterrupt):
        exporting.export_plan(plan, blocks=blocks, target=target, options=options,
                              progress=progress)  # fmt: skip
    assert len(seen) == 1
    assert list(tmp_path.iterdir()) == []
    assert threading.active_count() == before


def test_batches_exporting_two_at_once_use_one_encoder_each(long_real, tmp_path, monkeypatch):
    plan, blocks, options = long_real
    prepared = exporting.Prepared(plan, blocks)
    jobs = exporting.batch_jobs(["a", "b"], folder=tmp_path, fmt=exporting.format_for("mp3"))
    done = exporting.export_batch(
        jobs, prepare=lambda source: prepared, folder=tmp_path, options=options, workers=1
    )
    assert [r.encoders for r in done.results] == [2, 2]  # one script at a time: halves

    class Pool:  # runs jobs where they are submitted, recording how
        def __init__(self, **kwargs):
            self.calls = []

        def submit(self, function, *args):
            from concurrent.futures import Future

            future = Future()
            future.set_result(function(*args))
            Pool.encoders.append(args[-1])
            return future

        def shutdown(self, **kwargs):
            pass

    Pool.encoders = []
    monkeypatch.setattr(exporting, "ProcessPoolExecutor", Pool)
    done = exporting.export_batch(
        jobs, prepare=lambda source: prepared, folder=tmp_path, options=options, workers=2,
        force=True,
    )  # fmt: skip
    assert Pool.encoders == [1, 1]  # two scripts at once, a core each
    assert [r.encoders for r in done.results] == [1, 1]


def _early(plan, options, target, memory):
    return start_early(
        target, script=plan.script.path, options=options, force=True, memory=memory
    )


def test_ffmpegs_started_early_carry_a_reexport_in_halves(long_real, tmp_path):
    plan, blocks, options = long_real
    memory = GainMemory(tmp_path / "gains")
    target = tmp_path / "out" / "s.mp3"
    target.parent.mkdir()
    assert _early(plan, options, target, memory) is None  # nothing remembered yet: none
    exporting.export_plan(plan, blocks=blocks, target=target, options=options, memory=memory)
    early = _early(plan, options, target, memory)
    assert early is not None and early.second is not None
    result = exporting.export_plan(
        plan, blocks=blocks, target=target, options=options, memory=memory, force=True,
        early=early,
    )  # fmt: skip
    assert (result.passes, result.encoders) == (1, 2)
    assert early.first._process.returncode == 0 and early.second._process.returncode == 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["s.mp3"]
    assert len(decode(target, sample_rate=SR)) == plan.frames


def test_ffmpegs_started_for_another_export_are_stopped(long_real, tmp_path):
    plan, blocks, options = long_real
    memory = GainMemory(tmp_path / "gains")
    (tmp_path / "out").mkdir()
    exporting.export_plan(plan, blocks=blocks, target=tmp_path / "out" / "a.mp3",
                          options=options, memory=memory)  # fmt: skip
    early = _early(plan, options, tmp_path / "out" / "a.mp3", memory)
    assert len(list((tmp_path / "out").glob(".a.mp3.partial-*"))) == 1
    result = exporting.export_plan(
        plan, blocks=blocks, target=tmp_path / "out" / "b.mp3", options=options, memory=memory,
        early=early,
    )  # fmt: skip
    assert result.passes == 1
    assert early.first._process.poll() is not None and early.second._process.poll() is not None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp3", "b.mp3"]


def test_a_remembered_gain_that_misses_still_exports_right_with_early_ffmpegs(
    long_real, tmp_path
):
    plan, blocks, options = long_real
    memory = GainMemory(tmp_path / "gains")
    target = tmp_path / "out" / "s.mp3"
    target.parent.mkdir()
    first = exporting.export_plan(
        plan, blocks=blocks, target=target, options=options, memory=memory
    )
    key = memory.key(script=str(plan.script.path), fmt="mp3", sample_rate=SR,
                     loudness_lufs=options.loudness_lufs, true_peak_db=options.true_peak_db)  # fmt: skip
    memory.remember(key, Recalled(first.gain_db + 6.0, -2.0))  # the script got much quieter
    early = _early(plan, options, target, memory)
    result = exporting.export_plan(
        plan, blocks=blocks, target=target, options=options, memory=memory, force=True,
        early=early,
    )  # fmt: skip
    assert result.passes == 3  # the one pass missed: measured, then encoded again
    assert abs(result.loudness_lufs - options.loudness_lufs) < 0.1
    assert abs(result.gain_db - first.gain_db) < 0.05
    assert sorted(p.name for p in target.parent.iterdir()) == ["s.mp3"]
    assert len(decode(target, sample_rate=SR)) == plan.frames
