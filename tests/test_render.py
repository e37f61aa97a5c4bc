"""The streaming renderer: exact placement, determinism, ambience, no clipping, memory."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeSpeech

from prtvoice import paths, session
from prtvoice.errors import InputError
from prtvoice.options import Options
from prtvoice.plan import Plan, plan_script
from prtvoice.render import (
    CUE_CUT_SECONDS,
    CUE_VOICE_GAIN,
    DUCK_RAMP_SECONDS,
    SPEECH_EDGE_SECONDS,
    render,
    render_events,
    resolve_ambience,
)
from prtvoice.script import (
    Ambience,
    Breathe,
    Location,
    Pause,
    Say,
    Script,
    Section,
    Sound,
    SoundRef,
    VoiceSettings,
    load_script,
)
from prtvoice.sounds import SoundBank

SR = 44100
HERE = Location(Path("t.yaml"), 1, 1)
VOICE = VoiceSettings()


def say(text: str) -> Say:
    return Say(text, VOICE, HERE)


def pause(seconds: float) -> Pause:
    return Pause(seconds, False, HERE)


def sound(name: str) -> Sound:
    return Sound(SoundRef(name), HERE)


def breathe(inhale, hold, exhale, hold_after=0.0, cycles=2, cue="tone") -> Breathe:
    return Breathe(inhale, hold, exhale, hold_after, cycles, cue, VOICE, HERE)


def make_script(steps, *, ambience: str | None = None, level_db: float = -20.0) -> Script:
    bed = Ambience(SoundRef(ambience), 10 ** (level_db / 20), HERE) if ambience else None
    return Script(
        path=Path("t.yaml"), id="t", title="T", kind="custom", summary="", language="en",
        duration=None, voice=VOICE, ambience=bed, variables={},
        sections=(Section("One", tuple(steps), HERE),), where=HERE,
    )  # fmt: skip


STEPS = [
    sound("bell"),
    say("Find a comfortable position."),
    pause(2),
    breathe(2, 1, 3, cycles=2, cue="tone"),
    pause(1.5),
    say("Notice the breath."),
    pause(0.5),
    say("Welcome back."),
    pause(1),
    sound("chime"),
]


@pytest.fixture(scope="module")
def bank() -> SoundBank:
    return SoundBank(sample_rate=SR, seed=0)


@pytest.fixture(scope="module")
def speech() -> FakeSpeech:
    return FakeSpeech(SR)


def make_plan(steps, speech, bank, **kw) -> Plan:
    return plan_script(make_script(steps, **kw), options=Options(), speech=speech, sounds=bank)


def whole(plan: Plan, speech, bank, options: Options | None = None, **kw) -> np.ndarray:
    blocks = list(render(plan, voices=speech, sounds=bank, options=options or Options(), **kw))
    for block in blocks:
        assert block.dtype == np.float32 and block.ndim == 2 and block.shape[1] == 1
    return np.concatenate(blocks)[:, 0] if blocks else np.zeros(0, np.float32)


def onset(x: np.ndarray, after: int, threshold: float) -> int:
    """First sample at or after `after` whose magnitude exceeds `threshold`."""
    above = np.flatnonzero(np.abs(x[after:]) > threshold)
    return after + int(above[0]) if len(above) else -1


# ---------------------------------------------------------------------------
# Placement


def test_length_blocks_and_silence_without_ambience(speech, bank):
    plan = make_plan(STEPS, speech, bank)
    blocks = list(render(plan, voices=speech, sounds=bank, options=Options()))
    assert all(len(b) == Options().block_frames for b in blocks[:-1])
    x = np.concatenate(blocks)[:, 0]
    assert len(x) == plan.frames
    for event in plan.events:
        span = x[event.start : event.end]
        if event.kind in ("pause", "hold"):
            assert not span.any(), f"{event.kind} at {event.start} is not silent"
        else:
            assert span.any()


def test_every_sound_starts_on_its_planned_sample(speech, bank):
    plan = make_plan(STEPS, speech, bank)
    x = whole(plan, speech, bank)
    few_ms = round(0.003 * SR)
    for event in plan.events:
        if event.kind in ("pause", "hold"):
            continue
        # Nothing leaks in before its start (the event before is silence or ends
        # in silence) and it begins within a few ms of its planned sample.
        assert np.max(np.abs(x[max(0, event.start - 20) : event.start]), initial=0) < 1e-4
        first = onset(x, event.start, 1e-6)
        assert event.start <= first <= event.start + few_ms, event
        # Audible (well above the threshold) within a few ms more.
        loud = onset(x, event.start, 1e-3)
        assert loud - event.start < round((0.02 if event.kind == "say" else 0.025) * SR)


def test_onsets_are_found_above_the_ambience_too(speech, bank):
    plan = make_plan(STEPS, speech, bank, ambience="pink-noise", level_db=-30)
    x = whole(plan, speech, bank)
    for event in plan.events:
        if event.kind in ("say", "sound"):
            assert 0 <= onset(x, event.start, 0.05) - event.start < round(0.01 * SR)
            assert np.max(np.abs(x[max(0, event.start - 200) : event.start]), initial=0) < 0.05


def test_each_event_plays_its_own_clip_exactly(speech, bank):
    plan = make_plan(STEPS, speech, bank)
    x = whole(plan, speech, bank)
    edge = round(SPEECH_EDGE_SECONDS * SR)
    for event in plan.events:
        span = x[event.start : event.end]
        if event.kind == "sound":
            assert np.array_equal(span, bank.clip(event.sound)[:, 0])
        elif event.kind == "say":
            clip = speech.clip(event.text, event.voice, "en")[:, 0]
            assert np.array_equal(span[edge:-edge], clip[edge:-edge])
            assert abs(span[0]) < 1e-6 and abs(span[-1]) < 1e-3  # short fades: no click
        elif event.kind in ("inhale", "exhale"):
            assert np.array_equal(span, bank.breath_tone(event.kind, event.length)[:, 0])


def test_voice_cues_sound_at_the_phase_start_and_never_run_late(speech, bank):
    # A 0.3 s hold is shorter than the fake's "hold" (0.54 s): it must be cut.
    steps = [pause(0.5), breathe(1.5, 0.3, 1.5, cycles=2, cue="voice"), pause(0.5)]
    plan = make_plan(steps, speech, bank)
    x = whole(plan, speech, bank)
    cut = round(CUE_CUT_SECONDS * SR)
    holds = [e for e in plan.events if e.kind == "hold"]
    assert holds and all(e.text == "hold" for e in holds)
    for event in plan.events:
        if event.kind == "pause":
            continue
        clip = speech.clip(event.text, event.voice, "en")[:, 0] * np.float32(CUE_VOICE_GAIN)
        span = x[event.start : event.end]
        assert 0 <= onset(x, event.start, 1e-6) - event.start <= 5
        if len(clip) > event.length:  # cut at the phase end, with a short fade
            assert np.array_equal(span[300 : event.length - cut], clip[300 : event.length - cut])
            assert abs(span[-1]) < 1e-3
        else:  # the word, then silence until the next phase
            assert np.array_equal(span[300 : len(clip) - 300], clip[300:-300])
            assert not span[len(clip) :].any()


def test_tone_and_voice_cues_together(speech, bank):
    steps = [breathe(2, 0, 2, cycles=1, cue="both")]
    plan = make_plan(steps, speech, bank)
    x = whole(plan, speech, bank)
    inhale = plan.events[0]
    tone = bank.breath_tone("inhale", inhale.length)[:, 0]
    word = x[inhale.start : inhale.end] - tone
    clip = speech.clip("in", VOICE, "en")[:, 0] * np.float32(CUE_VOICE_GAIN)
    np.testing.assert_allclose(word[300 : len(clip) - 300], clip[300:-300], atol=1e-6)
    assert np.max(np.abs(word[len(clip) :])) < 1e-6


# ---------------------------------------------------------------------------
# Determinism, pieces, block sizes


@pytest.fixture(scope="module")
def ambient_plan(speech, bank) -> Plan:
    return make_plan(STEPS, speech, bank, ambience="soft-rain", level_db=-24)


def test_rendering_is_deterministic_across_banks(ambient_plan, speech, bank):
    first = whole(ambient_plan, speech, bank)
    fresh = SoundBank(sample_rate=SR, seed=0)
    assert np.array_equal(first, whole(ambient_plan, speech, fresh))
    reseeded = SoundBank(sample_rate=SR, seed=5)
    assert not np.array_equal(first, whole(ambient_plan, speech, reseeded))


@pytest.mark.parametrize("block", [1, 1000, 4097, 65536, 1 << 20])
def test_any_block_size_gives_identical_samples(ambient_plan, speech, bank, block):
    reference = whole(ambient_plan, speech, bank)
    options = replace(Options(), block_frames=block)
    if block == 1:  # one sample per block: only a stretch, or the test would be slow
        start = ambient_plan.events[1].start - 300
        got = whole(ambient_plan, speech, bank, options, start=start, end=start + 600)
        assert np.array_equal(got, reference[start : start + 600])
        return
    assert np.array_equal(whole(ambient_plan, speech, bank, options), reference)


def test_pieces_equal_the_whole(ambient_plan, speech, bank):
    reference = whole(ambient_plan, speech, bank)
    fade_end = round(Options().fade_seconds * SR)
    say_event = next(e for e in ambient_plan.events if e.kind == "say")
    cuts = sorted({0, 12345, fade_end - 7, say_event.start - 5000, say_event.start + 3,
                   ambient_plan.frames - 1000, ambient_plan.frames})  # fmt: skip
    pieces = [whole(ambient_plan, speech, bank, start=a, end=b) for a, b in pairwise(cuts)]
    assert np.array_equal(np.concatenate(pieces), reference)


def test_lazy_events_render_the_same_and_still_fade_out(ambient_plan, speech, bank):
    reference = whole(ambient_plan, speech, bank)
    for total in (None, ambient_plan.frames):
        lazy = render_events(
            (e for e in ambient_plan.events),
            ambience=ambient_plan.ambience,
            voices=speech,
            sounds=bank,
            options=replace(Options(), block_frames=3000),
            language="en",
            total_frames=total,
        )
        assert np.array_equal(np.concatenate(list(lazy))[:, 0], reference)
    start = ambient_plan.events[3].start + 11
    lazy = render_events(
        iter(ambient_plan.events), ambience=ambient_plan.ambience, voices=speech,
        sounds=bank, options=Options(), language="en", total_frames=None, start=start,
    )  # fmt: skip
    assert np.array_equal(np.concatenate(list(lazy))[:, 0], reference[start:])


# ---------------------------------------------------------------------------
# Ambience


def bed_part(plan: Plan, speech, bank, options=None) -> np.ndarray:
    """What the ambience adds: the render minus the same render with ambience off."""
    options = options or Options()
    with_bed = whole(plan, speech, bank, options).astype(np.float64)
    dry = whole(plan, speech, bank, replace(options, ambience="off")).astype(np.float64)
    return with_bed - dry


def test_ambience_fades_in_and_out_over_the_session(ambient_plan, speech, bank):
    part = bed_part(ambient_plan, speech, bank)
    fade = round(Options().fade_seconds * SR)
    bed = bank.bed(ambient_plan.ambience.sound).block(0, ambient_plan.frames)[:, 0]
    gain = part / np.where(np.abs(bed) > 0.02, bed, np.nan)
    assert part[0] == 0.0 and part[-1] == 0.0
    level = ambient_plan.ambience.gain
    # A raised-cosine rise over the fade: a quarter, half, three quarters on the way.
    for fraction, expected in ((0.25, 0.1464), (0.5, 0.5), (0.75, 0.8536)):
        at = round(fraction * fade)
        near = gain[at - 200 : at + 200]
        assert np.nanmedian(near) / level == pytest.approx(expected, abs=0.02)
    # At full level in a pause well away from the fades and from speech.
    quiet = next(e for e in ambient_plan.events if e.kind == "hold")
    assert np.nanmedian(gain[quiet.start + 1000 : quiet.end - 1000]) == pytest.approx(
        level, rel=1e-3
    )


def test_ambience_ducks_smoothly_under_speech(ambient_plan, speech, bank):
    options = Options()
    part = bed_part(ambient_plan, speech, bank, options)
    bed = bank.bed(ambient_plan.ambience.sound).block(0, ambient_plan.frames)[:, 0]
    valid = np.abs(bed) > 0.05
    gain = np.where(valid, part / np.where(valid, bed, 1), np.nan) / ambient_plan.ambience.gain
    notice = next(e for e in ambient_plan.events if e.text == "Notice the breath.")
    during = np.nanmedian(gain[notice.start + 2000 : notice.end - 2000])
    assert 20 * np.log10(during) == pytest.approx(-options.duck_db, abs=0.1)
    # Ramps of ~300 ms: down before the speech starts, not a step.
    before = np.nanmedian(
        gain[notice.start - round(0.15 * SR) - 300 : notice.start - round(0.15 * SR) + 300]
    )
    assert 0.6 < before < 0.9
    ramp = gain[notice.start - round(0.4 * SR) : notice.start + 1000]
    ramp = ramp[~np.isnan(ramp)]
    assert np.max(np.abs(np.diff(ramp))) < 0.01
    # A short gap between sentences keeps the bed down instead of pumping.
    welcome = next(e for e in ambient_plan.events if e.text == "Welcome back.")
    gap = gain[notice.end : welcome.start]
    assert np.nanmax(gap) < 0.85


def test_ambience_override_and_off(ambient_plan, speech, bank):
    dry = whole(ambient_plan, speech, bank, replace(Options(), ambience="off"))
    no_bed = make_plan(STEPS, speech, bank)
    assert np.array_equal(dry, whole(no_bed, speech, bank))
    drone = whole(ambient_plan, speech, bank, replace(Options(), ambience="low-drone"))
    assert not np.array_equal(drone, whole(ambient_plan, speech, bank))
    # A script without ambience gets the bed named on the command line.
    added = whole(no_bed, speech, bank, replace(Options(), ambience="brown-noise"))
    assert np.abs(added[no_bed.events[2].start : no_bed.events[2].end]).max() > 0.001


def test_resolve_ambience():
    script_bed = Ambience(SoundRef("soft-rain"), 0.05, HERE)
    assert resolve_ambience(script_bed, options=Options()) is script_bed
    assert resolve_ambience(script_bed, options=Options(ambience="off")) is None
    assert resolve_ambience(script_bed, options=Options(ambience="OFF")) is None
    swapped = resolve_ambience(script_bed, options=Options(ambience="pink-noise"))
    assert swapped.sound == SoundRef("pink-noise") and swapped.gain == 0.05
    assert resolve_ambience(swapped, options=Options(ambience="pink-noise")) is swapped
    chosen = resolve_ambience(None, options=Options(ambience="low-drone"))
    assert chosen.gain == pytest.approx(10 ** (-30 / 20))
    with pytest.raises(InputError, match="did you mean 'pink-noise'"):
        resolve_ambience(None, options=Options(ambience="pinknoise"))


def test_a_file_bed_from_the_command_line(tmp_path, speech, bank):
    import subprocess

    path = tmp_path / "stream.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
         "-i", "anoisesrc=color=brown:sample_rate=22050:duration=8:seed=2", str(path)],
        check=True,
    )  # fmt: skip
    resolved = resolve_ambience(None, options=Options(ambience=str(path)))
    assert resolved.sound.path == path.resolve()
    plan = make_plan([pause(10)], speech, bank)
    x = whole(plan, speech, bank, Options(ambience=str(path)))
    assert len(x) == plan.frames and x[0] == 0.0 and x[-1] == 0.0
    bed = SoundBank(sample_rate=SR).bed(resolved.sound).block(4 * SR, 2 * SR)[:, 0]
    expected = np.sqrt(np.mean(bed**2)) * resolved.gain
    assert np.sqrt(np.mean(x[4 * SR : 6 * SR] ** 2)) == pytest.approx(expected, rel=1e-3)


# ---------------------------------------------------------------------------
# Levels, limits, memory, speed


def test_no_sample_clips_and_gain_scales(ambient_plan, speech, bank):
    loud = make_plan(STEPS, speech, bank, ambience="brown-noise", level_db=-12)
    x = whole(loud, speech, bank)
    assert np.max(np.abs(x)) < 0.95  # headroom by construction: the np.clip guard never acts
    half = whole(loud, speech, bank, gain=0.5)
    np.testing.assert_allclose(half, x * np.float32(0.5), atol=1e-7)


class LoudSpeech(FakeSpeech):
    """Speech at the loudest a voice bank hands out (peak 0.9)."""

    def clip(self, text, voice, language):
        clip = super().clip(text, voice, language)
        return (clip * np.float32(0.9 / np.max(np.abs(clip)))).astype(np.float32)


def test_loud_speech_with_tone_cues_and_a_bed_keeps_its_headroom(bank):
    loud = LoudSpeech(SR)
    steps = [say("Breathe with the tone."), breathe(2, 1, 3, 1, cycles=2, cue="both")]
    plan = make_plan(steps, loud, bank, ambience="brown-noise", level_db=-20)
    x = whole(plan, loud, bank)
    assert 0.85 < np.max(np.abs(x[: plan.events[0].end])) < 0.97
    assert np.max(np.abs(x[plan.events[0].end :])) < 0.9


def test_bad_ranges_and_rates_are_refused(ambient_plan, speech, bank):
    with pytest.raises(ValueError):
        render(ambient_plan, voices=speech, sounds=bank, options=Options(), start=-1)
    with pytest.raises(ValueError):
        render(ambient_plan, voices=speech, sounds=bank, options=Options(),
               end=ambient_plan.frames + 1)  # fmt: skip
    with pytest.raises(ValueError):
        render(ambient_plan, voices=speech, sounds=bank, options=Options(sample_rate=48000))
    assert whole(ambient_plan, speech, bank, start=500, end=500).size == 0


def test_an_empty_stream_renders_nothing(speech, bank):
    blocks = render_events(
        iter(()), ambience=None, voices=speech, sounds=bank, options=Options(),
        language="en", total_frames=None,
    )  # fmt: skip
    assert list(blocks) == []


def peak_memory(plan: Plan, speech, bank) -> tuple[int, int]:
    tracemalloc.start()
    frames = 0
    for block in render(plan, voices=speech, sounds=bank, options=Options()):
        frames += len(block)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return frames, peak


def test_memory_does_not_grow_with_the_session(speech, bank):
    cycle = [
        say("Let the breath be easy."),
        pause(20),
        breathe(4, 2, 6, cycles=3, cue="both"),
        sound("soft-bell"),
    ]
    short = make_plan(cycle * 4, speech, bank, ambience="pink-noise")
    long = make_plan(cycle * 32, speech, bank, ambience="pink-noise")
    assert long.frames > 30 * 60 * SR  # eight times the short one
    bank.bed(SoundRef("pink-noise"))  # built once, not part of either measurement
    short_frames, short_peak = peak_memory(short, speech, bank)
    long_frames, long_peak = peak_memory(long, speech, bank)
    assert (short_frames, long_frames) == (short.frames, long.frames)
    assert long_peak < short_peak + 2_000_000  # the same few blocks and clips
    assert long_peak < 20_000_000


LIBRARY_SCRIPTS = sorted(p.name for p in paths.bundled_scripts_dir().glob("*.yaml"))


@pytest.mark.parametrize("name", LIBRARY_SCRIPTS)
def test_library_scripts_render_to_length_without_clipping(name, speech, bank):
    script = load_script(paths.bundled_scripts_dir() / name, audio_dirs=session.audio_dirs())
    plan = plan_script(script, options=Options(), speech=speech, sounds=bank)
    frames, peak = 0, 0.0
    for block in render(plan, voices=speech, sounds=bank, options=Options()):
        frames += len(block)
        peak = max(peak, float(np.max(np.abs(block))))
    assert frames == plan.frames
    assert 0.3 < peak < 0.9  # the last-guard clip never has anything to do


class EspeakVoices:
    """Real eSpeak NG speech through the espeak-ng command, decoded by prtvoice.decode.

    A small stand-in for the voice bank: real speech audio (leading and
    trailing silence trimmed, peak 0.8) without the bank's cache and workers.
    """

    def __init__(self, folder: Path, sample_rate: int):
        self.folder, self.sample_rate = folder, sample_rate
        self.clips: dict[str, np.ndarray] = {}

    def clip(self, text: str, voice: VoiceSettings, language: str) -> np.ndarray:
        import subprocess

        from prtvoice.decode import decode_file

        if text not in self.clips:
            out = self.folder / f"{len(self.clips)}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(out), text],
                           check=True, timeout=60)  # fmt: skip
            x = decode_file(out, sample_rate=self.sample_rate, max_seconds=60)[:, 0]
            voiced = np.flatnonzero(np.abs(x) > 1e-3)
            x = x[voiced[0] : voiced[-1] + 1]
            self.clips[text] = (x * np.float32(0.8 / np.max(np.abs(x)))).reshape(-1, 1)
        return self.clips[text]

    def frames(self, text: str, voice: VoiceSettings, language: str) -> int:
        return len(self.clip(text, voice, language))


def test_real_speech_lands_on_its_samples(tmp_path, bank):
    voices = EspeakVoices(tmp_path, SR)
    steps = [
        sound("soft-bell"),
        say("Find a comfortable position, and let your eyes close."),
        pause(1),
        breathe(3, 1, 4, cycles=1, cue="both"),
        say("Welcome back."),
    ]
    dry = make_plan(steps, voices, bank)
    x = whole(dry, voices, bank)
    assert len(x) == dry.frames
    for event in dry.events:
        if event.kind == "say":
            clip = voices.clip(event.text, VOICE, "en")[:, 0]
            span = x[event.start : event.end]
            assert 0 <= onset(x, event.start, 1e-3) - event.start < round(0.005 * SR)
            assert np.array_equal(span[300:-300], clip[300:-300])
        elif event.kind == "pause":
            assert not x[event.start : event.end].any()
    wet = make_plan(steps, voices, bank, ambience="soft-rain", level_db=-28)
    y = whole(wet, voices, bank)
    assert np.array_equal(y, whole(wet, voices, bank))
    assert np.max(np.abs(y)) < 0.95


def test_a_library_script_with_the_real_voice_bank(bank):
    """The real pipeline: bundled script, pyttsx3 + eSpeak NG voice bank, sound bank, render."""
    from prtvoice.config import Config

    options = Options()
    script = load_script(
        paths.bundled_scripts_dir() / "breathing-box.yaml", audio_dirs=session.audio_dirs()
    )
    with session.voice_bank(Config(), options) as voices:
        plan = plan_script(script, options=options, speech=voices, sounds=bank,
                           prefetch=voices.prefetch)  # fmt: skip
        first = whole(plan, voices, bank)
        assert np.array_equal(first, whole(plan, voices, bank))
        assert len(first) == plan.frames
        assert 0.3 < np.max(np.abs(first)) < 0.95
        dry = whole(plan, voices, bank, replace(options, ambience="off"))
        spoken = [e for e in plan.events if e.kind == "say" or e.text]
        assert spoken
        for event in spoken:
            # The voice starts on its planned sample (the bank trims eSpeak's lead-in)
            # and nothing of a cue word spills into the next phase.
            assert 0 <= onset(dry, event.start, 1e-4) - event.start < round(0.02 * SR), event
        for event in plan.events:
            if event.kind in ("pause", "hold") and not event.text:
                assert not dry[event.start : event.end].any()


# ---------------------------------------------------------------------------
# Reading ahead: only what a block needs (a player waits for those clips)


def counted(events):
    """The events as a stream that records how many were taken."""
    taken = []

    def stream():
        for event in events:
            taken.append(event)
            yield event

    return stream(), taken


def lazy_blocks(plan: Plan, speech, bank, *, ambience, **kw):
    stream, taken = counted(plan.events)
    blocks = render_events(
        stream, ambience=ambience, voices=speech, sounds=bank, options=Options(),
        language="en", total_frames=None, **kw,
    )  # fmt: skip
    return blocks, taken


def test_without_ambience_the_first_block_reads_only_the_events_in_it(speech, bank):
    plan = make_plan(STEPS, speech, bank)
    assert plan.events[0].kind == "sound" and plan.events[0].end > Options().block_frames
    blocks, taken = lazy_blocks(plan, speech, bank, ambience=None)
    next(blocks)
    assert taken == [plan.events[0]]  # not the speech after the bell


def minimal_prefix(taken, upto: int) -> bool:
    """The events taken are exactly those needed to know the timeline up to `upto`."""
    return taken[-1].end >= upto and all(e.end < upto for e in taken[:-1])


def test_with_ambience_reading_ahead_covers_the_fades_and_the_ducking(speech, bank):
    steps = [sound("chime"), say("Find a comfortable position."), pause(2), say("Rest."), pause(9)]
    plan = make_plan(steps, speech, bank, ambience="soft-rain")
    size = Options().block_frames
    fade = round(Options().fade_seconds * SR)
    ramp = round(DUCK_RAMP_SECONDS * SR)
    assert plan.events[0].end < 2 * fade
    # The end unknown: as far as two fades (a shorter session shortens them).
    blocks, taken = lazy_blocks(plan, speech, bank, ambience=plan.ambience)
    next(blocks)
    assert len(taken) > 1 and minimal_prefix(taken, 2 * fade)
    # Later blocks: a fade beyond the block, to see the session's end coming.
    block_end = size
    for _ in blocks:
        block_end += size
        if taken[-1] is not plan.events[-1]:
            assert minimal_prefix(taken, max(block_end, fade) + fade)
    # The caller knows the session outlasts that: only the ducking's ramp ahead.
    blocks, taken = lazy_blocks(
        plan, speech, bank, ambience=plan.ambience, lasts_at_least=plan.frames
    )
    next(blocks)
    assert taken == [plan.events[0]] and minimal_prefix(taken, size + ramp)


@pytest.mark.parametrize("steps", [STEPS, [say("Hello."), pause(1), say("Bye.")]])
def test_reading_less_ahead_never_changes_a_sample(steps, speech, bank):
    # A long session and one shorter than two fades (whose fades shrink).
    plan = make_plan(steps, speech, bank, ambience="soft-rain", level_db=-24)
    reference = whole(plan, speech, bank)
    for lasts in (0, plan.frames // 2, plan.frames):
        blocks, _ = lazy_blocks(plan, speech, bank, ambience=plan.ambience, lasts_at_least=lasts)
        assert np.array_equal(np.concatenate(list(blocks))[:, 0], reference)
