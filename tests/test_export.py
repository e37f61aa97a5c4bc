"""Exports on the decoded audio: real eSpeak NG speech, the real renderer, real ffmpeg.

Speech comes from the espeak-ng command line (tests/export_helpers.py), so the
level and peakiness that normalisation must handle are eSpeak's own.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyloudnorm
import pytest
import scipy.signal
from export_helpers import EspeakVoices, decode, ffprobe, make_plan, session_script

from prtvoice import export as exporting
from prtvoice.encode import FORMATS, available_encoders, choose_encoder
from prtvoice.errors import EncoderError, OutputExistsError
from prtvoice.ffmpeg import find_ffmpeg
from prtvoice.options import Options
from prtvoice.sounds import SoundBank

# Exports run at the export rate (eSpeak's own 22.05 kHz); every length below is
# counted in samples of the plan's own rate.
SR = Options().export_sample_rate
# Largest codec frame (samples) by which a lossy file may differ.
FRAME = {"mp3": 1152, "m4a": 1024, "opus": 960, "ogg": 2048, "flac": 0, "wav": 0}


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """One real plan (~26 s: bell, eSpeak speech, pauses, breathing tones) and its blocks."""
    options = Options().for_export()
    assert options.sample_rate == SR
    voices = EspeakVoices(tmp_path_factory.mktemp("espeak"), sample_rate=SR)
    sounds = SoundBank(sample_rate=SR)
    plan = make_plan(session_script(2), voices, sounds, options)
    blocks = exporting.blocks_from_plan(plan, voices=voices, sounds=sounds, options=options)
    return plan, blocks, options


def true_peak_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.abs(scipy.signal.resample_poly(x.astype(np.float64), 4, 1)).max())


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_on_the_decoded_audio(real, tmp_path, fmt):
    plan, blocks, options = real
    target = tmp_path / f"session.{fmt}"
    result = exporting.export_plan(
        plan, blocks=blocks, target=target, options=replace(options, format=fmt)
    )
    assert result.path == target and target.is_file()
    assert not list(tmp_path.glob(".*partial*"))
    x = decode(target, sample_rate=plan.sample_rate)
    # Length: to the sample for lossless, within a codec frame for lossy; MP3 to
    # the sample too (its LAME tag's padding is set from the plan: mp3join.set_length).
    assert abs(len(x) - plan.frames) <= (0 if fmt == "mp3" else FRAME[fmt])
    # ffprobe counts an MP3's encoder delay (its start_time, from the LAME tag that
    # players use to trim) in the duration; what plays is duration - start_time.
    probed = ffprobe(target, "-show_format")["format"]
    start = float(probed.get("start_time", "0").replace("N/A", "0"))
    duration = float(probed["duration"]) - start
    assert duration == pytest.approx(plan.seconds, abs=FRAME[fmt] / SR + 0.001)
    # Loudness and true peak with a real meter on what a player decodes.
    loudness = pyloudnorm.Meter(SR).integrated_loudness(x.astype(np.float64))
    assert loudness == pytest.approx(-16.0, abs=1.0)
    assert true_peak_db(x) <= -1.0 + 0.1
    # The encoder got exactly the target loudness (the limiter's cost made up).
    assert result.loudness_lufs == pytest.approx(-16.0, abs=0.15)
    # Chapters, one per section, and tags.
    if fmt != "wav":
        chapters = ffprobe(target, "-show_chapters")["chapters"]
        assert [c["tags"]["title"] for c in chapters] == [s.title for s in plan.sections]
        starts = [float(c["start_time"]) for c in chapters]
        assert starts == pytest.approx([s.start / SR for s in plan.sections], abs=0.002)
    probe = ffprobe(target, "-show_format", "-show_streams")
    tags = {k.lower(): v for k, v in probe["format"].get("tags", {}).items()}
    tags.update({k.lower(): v for k, v in probe["streams"][0].get("tags", {}).items()})
    assert tags["title"] == plan.script.title
    assert tags["artist"] == "prtvoice"
    assert tags["genre"] == "Meditation"
    assert plan.script.id in tags.get("comment", tags.get("description", ""))


def test_speech_is_not_made_louder_by_long_silences(real):
    """Gating: the same speech with minutes of extra silence gets the same gain."""
    plan, blocks, _ = real

    def padded():
        yield from blocks()
        yield np.zeros((120 * SR, 1), dtype=np.float32)

    quiet = exporting.measure(blocks, frames=plan.frames, sample_rate=SR)
    long = exporting.measure(padded, frames=plan.frames + 120 * SR, sample_rate=SR)
    assert long.loudness_lufs == pytest.approx(quiet.loudness_lufs, abs=0.05)


def test_gain_fitted_on_spans_lands_on_the_whole_limited_stream(real):
    """The limiter's loss is measured on re-rendered spans only, yet fits the whole stream."""
    plan, blocks, options = real
    measured, pass1 = exporting._measure(blocks, frames=plan.frames, sample_rate=SR)
    decision = exporting.decide_gain(measured, options=options, fmt=FORMATS["mp3"])
    assert decision.limit_db is not None  # eSpeak's peaks need the limiter at -16 LUFS
    fitted, point, rendered = exporting._fit_in_spans(
        blocks.span, decision, pass1, target=-16.0, frames=plan.frames, sample_rate=SR
    )
    assert point is not None and fitted.gain_db > decision.gain_db  # the loss made up
    whole = exporting.measure_processed(blocks, fitted, frames=plan.frames, sample_rate=SR)
    assert whole.loudness_lufs == pytest.approx(-16.0, abs=exporting.FIT_TOLERANCE_LU + 1e-6)
    # What the fit expects is the whole stream's loudness: the encoding pass relies on it.
    assert fitted.expected_lufs == pytest.approx(whole.loudness_lufs, abs=1e-6)
    assert rendered > 0


def test_imageio_ffmpeg_exports_too(real, tmp_path, monkeypatch):
    import imageio_ffmpeg

    monkeypatch.setenv("PRTVOICE_FFMPEG", imageio_ffmpeg.get_ffmpeg_exe())
    find_ffmpeg.cache_clear()
    try:
        assert find_ffmpeg() == imageio_ffmpeg.get_ffmpeg_exe()
        plan, blocks, options = real
        for fmt in ("mp3", "ogg", "opus"):
            target = tmp_path / f"s.{fmt}"
            exporting.export_plan(
                plan, blocks=blocks, target=target, options=replace(options, format=fmt)
            )
            assert abs(len(decode(target, sample_rate=SR)) - plan.frames) <= FRAME[fmt]
            assert len(ffprobe(target, "-show_chapters")["chapters"]) == len(plan.sections)
    finally:
        find_ffmpeg.cache_clear()


def test_missing_encoder_is_a_clear_error(tmp_path, monkeypatch):
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho ' A....D flac   FLAC'\necho ' A....D aac   AAC'\n")
    fake.chmod(0o755)
    available_encoders.cache_clear()
    with pytest.raises(EncoderError, match="no libmp3lame"):
        choose_encoder(FORMATS["mp3"], str(fake))
    assert choose_encoder(FORMATS["flac"], str(fake)) == "flac"


def test_the_encoder_list_is_kept_per_ffmpeg_binary_and_asked_again_when_it_changes(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("PRTVOICE_CACHE", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!/bin/sh\necho run >> {runs}\necho ' A....D flac   FLAC'\n")
    fake.chmod(0o755)

    def ask() -> frozenset[str]:
        available_encoders.cache_clear()  # as a new process would start
        return available_encoders(str(fake))

    def asked() -> int:
        return len(runs.read_text().splitlines()) if runs.exists() else 0

    assert ask() == {"flac"} and asked() == 1
    assert ask() == {"flac"} and asked() == 1  # kept: ffmpeg not run again
    kept = tmp_path / "cache" / "ffmpeg-encoders.json"
    assert "flac" in kept.read_text()
    # A different ffmpeg at the same path (another size and time): asked again.
    fake.write_text(
        f"#!/bin/sh\necho run >> {runs}\necho ' A....D flac   FLAC'\necho ' A....D libmp3lame  MP3'\n"
    )
    assert ask() == {"flac", "libmp3lame"} and asked() == 2
    assert ask() == {"flac", "libmp3lame"} and asked() == 2
    kept.write_text("{not json")  # damaged: asked again, and kept anew
    assert ask() == {"flac", "libmp3lame"} and asked() == 3
    assert ask() == {"flac", "libmp3lame"} and asked() == 3
    # A cache folder that cannot be written: asked every time, never an error.
    monkeypatch.setenv("PRTVOICE_CACHE", str(fake))  # a file, not a folder
    assert ask() == {"flac", "libmp3lame"} and asked() == 4
    assert ask() == {"flac", "libmp3lame"} and asked() == 5
    available_encoders.cache_clear()


def test_existing_target_refused_before_any_work_and_replaced_with_force(real, tmp_path):
    plan, blocks, options = real
    target = tmp_path / "s.wav"
    target.write_bytes(b"old")
    calls = []

    def counting():
        calls.append(1)
        return blocks()

    with pytest.raises(OutputExistsError, match="--force"):
        exporting.export_plan(
            plan, blocks=counting, target=target, options=replace(options, format="wav")
        )
    assert calls == [] and target.read_bytes() == b"old"
    exporting.export_plan(
        plan, blocks=counting, target=target, options=replace(options, format="wav"), force=True
    )
    assert len(decode(target, sample_rate=SR)) == plan.frames


def test_a_failure_mid_encode_keeps_the_old_file_and_leaves_no_partial(real, tmp_path):
    plan, blocks, options = real
    target = tmp_path / "s.mp3"
    target.write_bytes(b"old file")

    def failing():
        for index, block in enumerate(blocks()):
            # Stop in the encoding pass, once ffmpeg is writing the partial file.
            if index == 2 and list(tmp_path.glob(".s.mp3.partial-*")):
                raise KeyboardInterrupt
            yield block

    with pytest.raises(KeyboardInterrupt):
        exporting.export_plan(plan, blocks=failing, target=target, options=options, force=True)
    assert target.read_bytes() == b"old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mp3"]


def test_missing_folder_is_an_encoder_error(real, tmp_path):
    plan, blocks, options = real
    with pytest.raises(EncoderError, match="does not exist"):
        exporting.export_plan(
            plan, blocks=blocks, target=tmp_path / "no" / "s.mp3", options=options
        )


KILLABLE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    sys.path.insert(0, {tests!r})
    from fakes import FakeSounds, FakeSpeech
    from export_helpers import session_script, make_plan
    from prtvoice import atomic, export
    from prtvoice.options import Options
    options = Options()
    plan = make_plan(session_script(8), FakeSpeech(), FakeSounds(), options)
    passes = []
    def blocks():
        passes.append(1)
        rng = np.random.default_rng(0)
        for start in range(0, plan.frames, 8192):
            n = min(8192, plan.frames - start)
            if len(passes) > 1 and start > 20 * 8192:
                print("encoding", flush=True)
                time.sleep(0.05)  # slow enough to be stopped mid-encode
            yield (0.1 * rng.standard_normal((n, 1))).astype(np.float32)
    with atomic.sigterm_raises():
        export.export_plan(plan, blocks=blocks, target=Path(sys.argv[1]), options=options,
                           force=True)
""")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killed_export_leaves_the_old_file_intact(tmp_path, how):
    target = tmp_path / "s.mp3"
    target.write_bytes(b"previous export")
    code = KILLABLE.format(tests=str(Path(__file__).parent))
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "encoding"  # ffmpeg is writing the partial
    assert list(tmp_path.glob(".s.mp3.partial-*"))
    process.send_signal(how)
    process.wait(timeout=30)
    assert process.returncode != 0
    assert target.read_bytes() == b"previous export"
    partials = list(tmp_path.glob(".s.mp3.partial-*"))
    if how == signal.SIGTERM:
        assert partials == []  # cleaned up on the way out
    else:
        assert len(partials) == 1  # SIGKILL cannot be caught, but the next run tidies up
        from prtvoice.atomic import remove_stale_partials

        assert remove_stale_partials(target) == partials
        assert not partials[0].exists()


def _prepare(source: str) -> exporting.Prepared:
    """A picklable Prepare for batch tests: fake speech, synthetic blocks."""
    sys.path.insert(0, str(Path(__file__).parent))
    from fakes import FakeSounds, FakeSpeech

    options = Options()
    speech = FakeSpeech()
    script = replace(session_script(2, title=f"Session {source}", sid=source))
    plan = make_plan(script, speech, FakeSounds(), options)

    def blocks():
        out = np.zeros((plan.frames, 1), np.float32)
        for event in plan.events:
            if event.kind == "say":
                out[event.start : event.end] = speech.clip(event.text, event.voice, "en")
        for start in range(0, plan.frames, 8192):
            yield out[start : start + 8192]

    return exporting.Prepared(plan, blocks)


@pytest.mark.parametrize("workers", [1, 2])
def test_batch_exports_with_a_playlist(tmp_path, workers):
    folder = tmp_path / "phone"
    folder.mkdir()
    fmt = FORMATS["opus"]
    jobs = exporting.batch_jobs(["alpha", "beta", "gamma"], folder=folder, fmt=fmt)
    options = Options(format="opus")
    result = exporting.export_batch(
        jobs,
        prepare=_prepare,
        folder=folder,
        options=options,
        transcripts=("lrc",),
        workers=workers,
    )
    names = [r.path.name for r in result.results]
    assert names == ["01-alpha.opus", "02-beta.opus", "03-gamma.opus"]
    playlist = result.playlist.read_text(encoding="utf-8").splitlines()
    assert playlist[0] == "#EXTM3U"
    assert playlist[1].startswith("#EXTINF:") and playlist[1].endswith("prtvoice - Session alpha")
    assert playlist[2::2] == names
    seconds = int(playlist[1].split(":")[1].split(",")[0])
    assert seconds == round(result.results[0].seconds)
    for number, path in enumerate(folder.glob("*.opus"), start=1):
        del number
        tags = ffprobe(path, "-show_streams")["streams"][0]["tags"]
        track = {k.lower(): v for k, v in tags.items()}["track"]
        assert track.endswith("/3")
    assert (folder / "02-beta.lrc").read_text(encoding="utf-8").startswith("[ti:Session beta]")
    with pytest.raises(OutputExistsError):
        exporting.export_batch(jobs, prepare=_prepare, folder=folder, options=options)


class _RecordedEncoder(exporting.Encoder):
    made: ClassVar[list[_RecordedEncoder]] = []  # each test sets a fresh list

    def __init__(self, command, **kwargs):
        super().__init__(command, **kwargs)
        self.made.append(self)


class _WatchedBlocks:
    """The plan's blocks, noting how many encoders existed as each pass began."""

    def __init__(self, blocks, *, fail_in_pass: int | None = None):
        self.blocks, self.fail_in_pass = blocks, fail_in_pass
        self.encoders_at_pass: list[int] = []

    def __call__(self):
        self.encoders_at_pass.append(len(_RecordedEncoder.made))
        if len(self.encoders_at_pass) == self.fail_in_pass:
            raise KeyboardInterrupt
        return self.blocks()

    def span(self, start, end):
        return self.blocks.span(start, end)


def test_ffmpeg_starts_before_the_measuring_pass(real, tmp_path, monkeypatch):
    # ffmpeg takes ~0.12 s to start (it links ~200 libraries): a first export starts
    # it before measuring, so that happens beside pass 1, not before the encoding.
    plan, blocks, options = real
    monkeypatch.setattr(_RecordedEncoder, "made", [])
    monkeypatch.setattr(exporting, "Encoder", _RecordedEncoder)
    watched = _WatchedBlocks(blocks)
    target = tmp_path / "s.mp3"
    result = exporting.export_plan(plan, blocks=watched, target=target, options=options)
    assert result.passes == 2
    assert watched.encoders_at_pass == [1, 1]  # measuring, then encoding: the one encoder
    assert _RecordedEncoder.made[0]._process.returncode == 0
    duration = float(ffprobe(target, "-show_entries", "format=duration")["format"]["duration"])
    assert abs(duration - plan.frames / SR) < 0.1


def test_a_failure_while_measuring_stops_the_waiting_ffmpeg(real, tmp_path, monkeypatch):
    plan, blocks, options = real
    monkeypatch.setattr(_RecordedEncoder, "made", [])
    monkeypatch.setattr(exporting, "Encoder", _RecordedEncoder)
    target = tmp_path / "s.mp3"
    target.write_bytes(b"old file")
    watched = _WatchedBlocks(blocks, fail_in_pass=1)
    with pytest.raises(KeyboardInterrupt):
        exporting.export_plan(plan, blocks=watched, target=target, options=options, force=True)
    (encoder,) = _RecordedEncoder.made
    assert encoder._process.poll() is not None  # not left waiting for input
    assert target.read_bytes() == b"old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mp3"]


@pytest.mark.parametrize(("target_lufs", "calls"), [(-16.0, 0), (-30.0, 1)])
def test_pass_1_leaves_the_true_peak_to_the_sample_peak_when_it_decides(
    real, tmp_path, monkeypatch, target_lufs, calls
):
    # At -16 LUFS eSpeak's sample peaks alone call for the limiter: the true peak
    # (~40 % of a measuring pass) is not measured. At -30 nothing is limited, and
    # the true peak decides: measured in a pass of its own.
    plan, blocks, options = real
    options = replace(options, loudness_lufs=target_lufs)
    made = []
    original = exporting._true_peak

    def counted(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(exporting, "_true_peak", counted)
    result = exporting.export_plan(plan, blocks=blocks, target=tmp_path / "s.mp3", options=options)
    assert len(made) == calls
    assert (result.limiter_pass, result.limited_frames > 0) == (calls == 0, calls == 0)
    unity = exporting.measure(blocks, frames=plan.frames, sample_rate=SR)
    if calls:
        assert made == [pytest.approx(unity.true_peak_db, abs=1e-9)]
        assert result.true_peak_db == pytest.approx(unity.true_peak_db + result.gain_db, abs=1e-4)
    assert true_peak_db(decode(tmp_path / "s.mp3", sample_rate=SR)) <= options.true_peak_db + 0.3


class _Padded:
    """The real plan's blocks, then silence up to `frames` (a BlockSource that can seek)."""

    def __init__(self, blocks, inner: int, frames: int):
        self.blocks, self.inner, self.frames = blocks, inner, frames

    def __call__(self):
        return self.span(0, self.frames)

    def span(self, start, end):
        if start < self.inner:
            yield from self.blocks.span(start, min(end, self.inner))
        for at in range(max(start, self.inner), end, 8192):
            yield np.zeros((min(8192, end - at), 1), np.float32)


def test_an_mp3_decodes_to_exactly_the_plans_samples(real, tmp_path):
    # ffmpeg's LAME tag counts a short final frame as padding for some lengths (one
    # frame's worth past a multiple of 576, here 10 samples: 37 samples too many).
    plan, blocks, options = real
    frames = (plan.frames // 576 + 1) * 576 + 10
    padded = replace(plan, frames=frames)
    source = _Padded(blocks, plan.frames, frames)
    raw = tmp_path / "raw.mp3"
    command = exporting.encoder_command(
        ffmpeg=find_ffmpeg(), fmt=FORMATS["mp3"], sample_rate=SR, out=raw
    )
    with exporting.Encoder(command) as encoder:
        for block in source():
            encoder.write(block)
    assert len(decode(raw, sample_rate=SR)) == frames + 37  # ffmpeg's own count
    result = exporting.export_plan(padded, blocks=source, target=tmp_path / "s.mp3", options=options)
    assert result.encoders == 1
    assert len(decode(tmp_path / "s.mp3", sample_rate=SR)) == frames
