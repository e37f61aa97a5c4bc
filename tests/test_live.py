"""The play-while-planning session: the same samples as the exact plan, a
target met to the sample while clip lengths are still unknown, seeking by
re-layout, and the whole thing played for real into a PulseAudio null sink.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from fakes import FakeSpeech

from prtvoice.live import LiveSession
from prtvoice.plan import plan_script, speech_requests
from prtvoice.player import Controller
from prtvoice.render import render
from prtvoice.script import load_script
from prtvoice.sounds import SoundBank

SR = 44100

SCRIPT = """\
prtvoice: 1
title: Live test
kind: custom
{duration}
sections:
  - title: Arrive
    steps:
      - sound: soft-bell
      - say: Welcome. Find a comfortable position.
      - pause: 2s~
      - say: Notice the breath [1s] as it comes and goes.
  - title: Breathe
    steps:
      - breathe: {{pattern: 2-1-2, cycles: 2, cue: both}}
      - pause: 1s~
  - title: Empty on purpose
    steps: []
  - title: Close
    steps:
      - say: Gently come back.
      - pause: 3s~
      - say: Thank you.
      - pause: 500ms
"""


SHORT = """\
prtvoice: 1
title: Short
kind: custom
sections:
  - title: Arrive
    steps:
      - sound: soft-bell
      - say: Welcome, friend.
  - title: Close
    steps:
      - pause: 1s
      - say: Thank you.
"""


def write(script_dir, duration: str = ""):
    path = script_dir / "live.yaml"
    path.write_text(SCRIPT.format(duration=duration))
    return load_script(path)


class LazySpeech(FakeSpeech):
    """Lengths unknown until synthesized (like a cold cache), at a speed unlike
    the default guess; counts prefetch requests and cancels."""

    def __init__(self, sample_rate=SR, per_char=0.11):
        super().__init__(sample_rate)
        self.per_char = per_char
        self.done: set[str] = set()
        self.background: list[list[str]] = []
        self.cancelled = 0

    def frames(self, text, voice, language):
        self.done.add(text)
        return round((0.2 + self.per_char * len(text)) / voice.rate * self.sample_rate)

    def known_frames(self, text, voice, language):
        return self.frames(text, voice, language) if text in self.done else None

    def prefetch_background(self, requests):
        self.background.append([text for text, _, _ in requests])
        speech = self

        class Handle:
            def cancel(self):
                speech.cancelled += 1

            def done(self):
                return True

            def wait(self):
                pass

        return Handle()


def play_all(live: LiveSession, section: int = 0) -> tuple[int, np.ndarray]:
    start, blocks = live.open(section)
    return start, np.concatenate(list(blocks))[:, 0]


def test_without_a_target_the_samples_equal_the_exact_plans(script_dir, options):
    script = write(script_dir)
    speech, sounds = FakeSpeech(), SoundBank(sample_rate=SR)
    plan = plan_script(script, options=options, speech=speech, sounds=sounds)
    expected = np.concatenate(list(render(plan, voices=speech, sounds=sounds, options=options)))
    live = LiveSession(script, options=options, voices=LazySpeech(per_char=0.06), sounds=sounds)
    # LazySpeech(per_char=0.06) speaks like FakeSpeech but starts unknown.
    live.voices.frames = speech.frames
    live.voices.clip = speech.clip
    start, audio = play_all(live)
    assert start == 0
    assert np.array_equal(audio, expected[:, 0])
    assert [e.start for e in live._events] == [e.start for e in plan.events]
    assert live.total_frames() == plan.frames
    assert [live.section_start(i) for i in range(4)] == [s.start for s in plan.sections]


@pytest.mark.parametrize("duration", ["duration: 40s", "duration: 55s"])
def test_a_target_is_met_to_the_sample_while_lengths_are_unknown(script_dir, options, duration):
    script = write(script_dir, duration)
    speech = LazySpeech(per_char=0.11)  # twice the default guess's speed of speech
    live = LiveSession(script, options=options, voices=speech, sounds=SoundBank(sample_rate=SR))
    assert live.total_frames() == round(script.duration * SR)
    _, audio = play_all(live)
    assert len(audio) == round(script.duration * SR)
    assert all(frames >= 0 for frames in live.flexible_given.values())
    events = live._events
    assert all(a.end == b.start for a, b in itertools.pairwise(events))
    assert events[-1].end == round(script.duration * SR)


def test_once_every_length_is_known_the_shares_are_the_exact_plans(script_dir, options):
    script = write(script_dir, "duration: 45s")
    speech, sounds = LazySpeech(), SoundBank(sample_rate=SR)
    play_all(LiveSession(script, options=options, voices=speech, sounds=sounds))  # warm
    plan = plan_script(script, options=options, speech=speech, sounds=sounds)
    live = LiveSession(script, options=options, voices=speech, sounds=sounds)
    play_all(live)
    assert [(e.start, e.length) for e in live._events] == [(e.start, e.length) for e in plan.events]


def test_seeking_ahead_estimates_the_start_and_never_waits_for_skipped_speech(script_dir, options):
    script = write(script_dir, "duration: 45s")
    speech = LazySpeech()
    live = LiveSession(script, options=options, voices=speech, sounds=SoundBank(sample_rate=SR))
    start, audio = play_all(live, 3)
    assert "Welcome. Find a comfortable position." not in speech.done  # skipped, not synthesized
    assert start > 0 and live._events[0].start == start
    assert all(e.section == 3 for e in live._events)
    assert start + len(audio) == round(45 * SR)  # still lands on the target
    assert speech.background[-1] == ["Gently come back.", "Thank you."]
    # Back to the start: prefetch restarts there, and the earlier request is cancelled.
    assert play_all(live, 0)[0] == 0
    assert speech.background[-1][0] == "Welcome. Find a comfortable position."
    assert speech.cancelled == 1


def test_an_empty_section_starts_where_the_next_one_does(script_dir, options):
    live = LiveSession(
        write(script_dir), options=options, voices=FakeSpeech(), sounds=SoundBank(sample_rate=SR)
    )
    play_all(live)
    assert live.section_start(2) == live.section_start(3)
    assert live.describe(live.section_start(3))[0] == 3


def test_only_one_section_keeps_the_sessions_pacing(script_dir, options):
    script = write(script_dir, "duration: 45s")
    speech, sounds = FakeSpeech(), SoundBank(sample_rate=SR)
    full = plan_script(script, options=options, speech=speech, sounds=sounds)
    live = LiveSession(script, options=options, voices=speech, sounds=sounds, only_section=3)
    start, audio = play_all(live)
    assert live.section_titles() == ["Close"]
    close = full.sections[3]
    assert start == 0
    assert abs(len(audio) - (close.end - close.start)) <= 2  # the same scale, rounded per pause


def test_a_target_that_cannot_be_met_is_refused_like_the_plan_refuses_it(script_dir, options):
    from prtvoice.errors import InputError, ScriptError

    script = write(script_dir, "duration: 10m")
    speech, sounds = FakeSpeech(), SoundBank(sample_rate=SR)
    with pytest.raises(ScriptError) as planned:
        plan_script(script, options=options, speech=speech, sounds=sounds)
    with pytest.raises(ScriptError) as live:
        LiveSession(script, options=options, voices=speech, sounds=sounds)
    assert str(live.value) == str(planned.value)
    with pytest.raises(InputError, match="cannot make the session last"):
        LiveSession(script, options=options, voices=LazySpeech(), sounds=sounds, target_seconds=5.0)


def test_describe_gives_the_line_being_spoken(script_dir, options):
    live = LiveSession(
        write(script_dir), options=options, voices=FakeSpeech(), sounds=SoundBank(sample_rate=SR)
    )
    play_all(live)
    say = next(e for e in live._events if e.kind == "say")
    assert live.describe(say.start + 10) == (0, say.text)
    pause = next(e for e in live._events if e.kind == "pause")
    assert live.describe(pause.start + 10) == (0, None)


@pytest.mark.playback
def test_a_live_session_plays_for_real_exactly_as_planned(pulse_sink, script_dir, options):
    from pulse import find_onset

    path = script_dir / "short.yaml"
    path.write_text(SHORT)
    script = load_script(path)
    speech, sounds = FakeSpeech(), SoundBank(sample_rate=SR)
    plan = plan_script(script, options=options, speech=speech, sounds=sounds)
    expected = np.concatenate(list(render(plan, voices=speech, sounds=sounds, options=options)))
    expected = expected[:, 0]
    recorder = pulse_sink.record()
    live = LiveSession(script, options=options, voices=speech, sounds=sounds)
    controller = Controller(live, block_frames=options.block_frames)
    seen: list = []
    controller.start()
    while (result := controller.wait(timeout=0.2)) is None:
        seen.append(controller.snapshot())
    recording = recorder.stop().samples
    assert result.completed and result.position == plan.frames
    assert result.underflows == 0 and result.gaps == 0
    first = int(np.flatnonzero(np.abs(expected) > 1e-3)[0])
    lag, match = find_onset(recording, expected[first : first + 5 * SR])
    heard = recording[lag - first : lag - first + plan.frames]
    assert match > 0.9999
    assert len(heard) == plan.frames
    wrong = np.flatnonzero(np.abs(heard - expected) > 1e-4)
    assert len(wrong) == 0, (wrong[:5], wrong[-5:], len(wrong))  # the same samples and spacing
    assert any(s.text == "Welcome, friend." for s in seen)
    assert {s.section_title for s in seen} == {"Arrive", "Close"}
    assert threading.active_count() < 20


def test_prefetch_keeps_a_window_ahead_instead_of_the_whole_session(script_dir, options):
    from prtvoice.live import PREFETCH_AHEAD

    path = script_dir / "many.yaml"
    path.write_text(
        "prtvoice: 1\ntitle: Many\nkind: custom\nsections:\n  - title: All\n    steps:\n"
        "      - repeat: 60\n        steps:\n          - say: Line number {n}.\n"
        "          - pause: 1s\n"
    )
    speech = LazySpeech()
    live = LiveSession(
        load_script(path), options=options, voices=speech, sounds=SoundBank(sample_rate=SR)
    )
    _start, blocks = live.open(0)
    assert live.prefetch_started(timeout=10)
    assert [len(batch) for batch in speech.background] == [PREFETCH_AHEAD]
    next(blocks)  # the renderer reads a few seconds of layout ahead
    asked = sum(len(batch) for batch in speech.background)
    assert asked < 60
    for _ in blocks:
        laid = len(speech.done)
        asked = sum(len(batch) for batch in speech.background)
        assert asked <= laid + PREFETCH_AHEAD  # never far ahead of the layout...
        assert asked >= min(60, laid + PREFETCH_AHEAD // 2)  # ...and never behind it
    flat = [text for batch in speech.background for text in batch]
    assert flat == [f"Line number {n}." for n in range(1, 61)]  # each once, in order


def test_the_first_window_goes_out_before_the_rest_of_a_long_session_is_listed(
    script_dir, options, monkeypatch
):
    # A 2 h session speaks ~600 lines: listing them all before asking for the
    # first ones held up play's first sound.
    from prtvoice import live as live_module
    from prtvoice.live import PREFETCH_AHEAD

    listed = []

    def counting(script, opts):
        for request in speech_requests(script, opts):
            listed.append(request)
            yield request

    monkeypatch.setattr(live_module, "speech_requests", counting)
    path = script_dir / "long.yaml"
    path.write_text(
        "prtvoice: 1\ntitle: Long\nkind: custom\nsections:\n  - title: All\n    steps:\n"
        "      - repeat: 600\n        steps:\n          - say: Line number {n}.\n"
        "          - pause: 1s\n"
    )
    listed_when_asked = []

    class Spy(LazySpeech):
        def prefetch_background(self, requests):
            listed_when_asked.append(len(listed))
            return super().prefetch_background(requests)

    speech = Spy()
    live = LiveSession(
        load_script(path), options=options, voices=speech, sounds=SoundBank(sample_rate=SR)
    )
    live.warm(0)
    assert live.prefetch_started(timeout=10)
    assert speech.background == [[f"Line number {n}." for n in range(1, PREFETCH_AHEAD + 1)]]
    assert listed_when_asked == [PREFETCH_AHEAD]
    _start, blocks = live.open(0)
    for _ in range(40):  # the window still follows the layout
        next(blocks)
    flat = [text for batch in speech.background for text in batch]
    assert flat == [f"Line number {n}." for n in range(1, len(flat) + 1)]
    assert len(flat) >= len(speech.done) + PREFETCH_AHEAD // 2
    live.close()


class SpeechNotYet(LazySpeech):
    """A voice bank whose clips are all still being made: asking for one fails."""

    def frames(self, text, voice, language):
        raise AssertionError(f"the first blocks waited for speech: {text!r}")

    clip = frames


@pytest.mark.parametrize("ambience", ["", "ambience: {sound: soft-rain, level: -30dB}"])
def test_a_session_opening_with_a_bell_sounds_before_any_speech_is_made(
    script_dir, options, ambience
):
    from prtvoice.player import PREBUFFER_BLOCKS

    path = script_dir / "bell.yaml"
    path.write_text(
        f"prtvoice: 1\ntitle: Bell\nkind: custom\n{ambience}\nsections:\n  - title: All\n"
        "    steps:\n      - sound: soft-bell\n      - say: Welcome.\n      - pause: 20s\n"
    )
    live = LiveSession(
        load_script(path), options=options, voices=SpeechNotYet(), sounds=SoundBank(sample_rate=SR)
    )
    _start, blocks = live.open(0)
    first = [next(blocks) for _ in range(PREBUFFER_BLOCKS)]  # what the player starts on
    assert np.max(np.abs(np.concatenate(first))) > 0.1  # the bell
    assert live.prefetch_started(timeout=10)
    live.close()


def test_the_opening_sound_is_made_ahead_and_only_once(script_dir, options):
    from prtvoice.live import warm_opening

    script = write(script_dir)  # opens with a soft bell
    made = []

    class CountingBank(SoundBank):
        def _make_clip(self, ref):
            made.append(ref.name)
            return super()._make_clip(ref)

    sounds = CountingBank(sample_rate=SR)
    warm_opening(script, section=0, sounds=sounds)
    warm_opening(script, section=1, sounds=sounds)  # opens with breathing: nothing to make
    live = LiveSession(script, options=options, voices=FakeSpeech(), sounds=sounds)
    _start, blocks = live.open(0)
    first = next(blocks)
    assert np.array_equal(
        first, SoundBank(sample_rate=SR).clip(script.sections[0].steps[0].sound)[: len(first)]
    )
    assert made == ["soft-bell"]
