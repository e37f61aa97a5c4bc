"""The planner: exact, contiguous timelines in samples; fitting to the sample."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prtvoice.errors import InputError, ScriptError
from prtvoice.plan import clock, layout, phase_frames, plan_script, share_out
from prtvoice.script import (
    Breathe,
    Location,
    Pause,
    Say,
    Script,
    Section,
    Sound,
    SoundRef,
    VoiceSettings,
)

HERE = Location(Path("t.yaml"), 1, 1)
VOICE = VoiceSettings()


def say(text: str) -> Say:
    return Say(text, VOICE, HERE)


def pause(seconds: float, flexible: bool = False) -> Pause:
    return Pause(seconds, flexible, HERE)


def breathe(inhale=4.0, hold=0.0, exhale=6.0, hold_after=0.0, cycles=3, cue="tone") -> Breathe:
    return Breathe(inhale, hold, exhale, hold_after, cycles, cue, VOICE, HERE)


def make_script(
    *sections: tuple[str, list], duration: float | None = None, language="en"
) -> Script:
    return Script(
        path=Path("t.yaml"),
        id="t",
        title="T",
        kind="custom",
        summary="",
        language=language,
        duration=duration,
        voice=VOICE,
        ambience=None,
        variables={},
        sections=tuple(Section(title, tuple(steps), HERE) for title, steps in sections),
        where=HERE,
        duration_where=Location(Path("t.yaml"), 4, 11),
    )


def plan(script, options, speech, sounds, **kw):
    return plan_script(script, options=options, speech=speech, sounds=sounds, **kw)


SAMPLE = make_script(
    ("Arriving", [Sound(SoundRef("bell"), HERE), say("Find a comfortable position."), pause(3)]),
    ("Breathing", [breathe(cycles=2), pause(5, flexible=True), say("Notice the breath.")]),
    ("Closing", [pause(2.5, flexible=True), say("Welcome back."), Sound(SoundRef("chime"), HERE)]),
)


def test_events_are_contiguous_and_fill_the_session(options, fake_speech, fake_sounds):
    p = plan(SAMPLE, options, fake_speech, fake_sounds)
    assert p.events[0].start == 0
    for before, after in zip(p.events, p.events[1:]):
        assert after.start == before.end
    assert p.frames == p.events[-1].end
    assert [s.title for s in p.sections] == ["Arriving", "Breathing", "Closing"]
    assert p.sections[0].start == 0 and p.sections[-1].end == p.frames
    for a, b in zip(p.sections, p.sections[1:]):
        assert a.end == b.start


def test_lengths_come_from_the_clips_and_sounds(options, fake_speech, fake_sounds):
    p = plan(SAMPLE, options, fake_speech, fake_sounds)
    says = [e for e in p.events if e.kind == "say"]
    assert [e.length for e in says] == [fake_speech.frames(e.text, VOICE, "en") for e in says]
    sounds = [e for e in p.events if e.kind == "sound"]
    assert [e.length for e in sounds] == [2 * options.sample_rate] * 2
    fixed = [e for e in p.events if e.kind == "pause" and not e.flexible]
    assert [e.length for e in fixed] == [3 * options.sample_rate]


def test_breathing_phases_land_on_their_scheduled_samples(options):
    # 4.3 s and 6.7 s do not divide the rate's 1/44100 grid evenly per phase; the
    # boundaries must still be the rounded cumulative times, never drifting.
    step = breathe(inhale=4.3, hold=1.1, exhale=6.7, hold_after=0.9, cycles=50)
    phases = phase_frames(step, options.sample_rate)
    assert [k for k, _ in phases[:4]] == ["inhale", "hold", "exhale", "hold"]
    position, elapsed = 0, 0.0
    pattern = [4.3, 1.1, 6.7, 0.9] * 50
    for (_kind, length), seconds in zip(phases, pattern):
        elapsed += seconds
        position += length
        assert position == round(elapsed * options.sample_rate)


def test_zero_holds_make_no_events_and_cues_follow_the_language(options, fake_speech, fake_sounds):
    script = make_script(("B", [breathe(4, 0, 6, 0, cycles=2, cue="both")]), language="de")
    p = plan(script, options, fake_speech, fake_sounds)
    assert [e.kind for e in p.events] == ["inhale", "exhale", "inhale", "exhale"]
    assert [e.text for e in p.events] == ["ein", "aus", "ein", "aus"]
    assert all(e.tone for e in p.events)
    assert [len(e) for e in [p.events]] == [4]


def test_holds_carry_voice_cue_but_never_a_tone(options, fake_speech, fake_sounds):
    script = make_script(("B", [breathe(4, 7, 8, 0, cycles=1, cue="both")]))
    p = plan(script, options, fake_speech, fake_sounds)
    kinds = [(e.kind, e.tone, e.text) for e in p.events]
    assert kinds == [("inhale", True, "in"), ("hold", False, "hold"), ("exhale", True, "out")]
    assert sum(e.length for e in p.events) == 19 * options.sample_rate


def test_target_duration_is_met_to_the_sample(options, fake_speech, fake_sounds):
    for target in (40.0, 41.00001, 55.456):
        p = plan(replace(SAMPLE, duration=target), options, fake_speech, fake_sounds)
        assert p.frames == round(target * options.sample_rate)
        flexible = [e.length for e in p.events if e.kind == "pause" and e.flexible]
        # 5 s~ and 2.5 s~ keep their 2:1 proportion to within a sample.
        assert abs(flexible[0] - 2 * flexible[1]) <= 2
        assert p.flex.target_frames == p.frames
        assert p.flex.scaled_frames == sum(flexible)


def test_minutes_overrides_the_script_target(options, fake_speech, fake_sounds):
    p = plan(replace(SAMPLE, duration=40.0), options, fake_speech, fake_sounds, target_seconds=50.0)
    assert p.frames == 50 * options.sample_rate


def test_a_target_out_of_reach_names_the_shortest_and_longest(options, fake_speech, fake_sounds):
    with pytest.raises(ScriptError) as caught:
        plan(replace(SAMPLE, duration=3600.0), options, fake_speech, fake_sounds)
    problem = caught.value.problems[0]
    assert (problem.line, problem.col) == (4, 11)  # points at `duration:`
    assert "shortest" in problem.message and "longest" in problem.message
    with pytest.raises(InputError, match=r"from \d+:\d+.* \(shortest\) to \d+:\d+.* \(longest\)"):
        plan(SAMPLE, options, fake_speech, fake_sounds, target_seconds=1.0)


def test_a_target_without_flexible_pauses_is_an_error(options, fake_speech, fake_sounds):
    script = make_script(("A", [say("Hello there."), pause(2)]), duration=30.0)
    with pytest.raises(ScriptError, match="no flexible pauses"):
        plan(script, options, fake_speech, fake_sounds)


def test_sessions_over_four_hours_are_refused(options, fake_speech, fake_sounds):
    script = make_script(("Long", [pause(3600)] * 5))
    with pytest.raises(ScriptError, match="over the limit"):
        plan(script, options, fake_speech, fake_sounds)


def test_prefetch_receives_each_clip_once_in_order(options, fake_speech, fake_sounds):
    script = make_script(
        ("A", [say("one"), say("two"), say("one"), breathe(cue="voice", cycles=3)])
    )
    plan(script, options, fake_speech, fake_sounds, prefetch=fake_speech.prefetch)
    assert [text for text, _, _ in fake_speech.prefetched] == ["one", "two", "in", "out"]


def test_the_listeners_rate_multiplies_the_scripts(options, fake_speech, fake_sounds):
    slow = replace(options, rate=0.5, voice="en-gb")
    p = plan(make_script(("A", [say("Hello there, friend.")])), slow, fake_speech, fake_sounds)
    assert p.events[0].voice == VoiceSettings(name="en-gb", rate=0.5, volume=1.0)
    normal = plan(
        make_script(("A", [say("Hello there, friend.")])), options, fake_speech, fake_sounds
    )
    assert p.frames == pytest.approx(2 * normal.frames, abs=2)


def test_previewing_one_section_or_from_a_section(options, fake_speech, fake_sounds):
    whole = plan(SAMPLE, options, fake_speech, fake_sounds)
    only = plan(SAMPLE, options, fake_speech, fake_sounds, only_section=1)
    assert [s.title for s in only.sections] == ["Breathing"]
    assert only.frames == whole.sections[1].end - whole.sections[1].start
    rest = plan(SAMPLE, options, fake_speech, fake_sounds, start_section=1)
    assert rest.frames == whole.frames - whole.sections[1].start


def test_layout_is_lazy(options, fake_speech, fake_sounds):
    events = layout(
        SAMPLE,
        options=options,
        speech=fake_speech,
        sounds=fake_sounds,
        flexible=lambda i, nominal, position: nominal,
    )
    first = next(events)
    assert first.kind == "sound"
    assert fake_speech.asked == []  # nothing synthesized before it is needed


def test_plan_json_follows_the_contract(options, fake_speech, fake_sounds):
    data = plan(SAMPLE, options, fake_speech, fake_sounds).to_json()
    assert set(data) >= {"id", "title", "duration", "sections", "events"}
    kinds = {e["kind"] for e in data["events"]}
    assert kinds <= {"say", "pause", "sound", "inhale", "hold", "exhale"}
    assert data["events"][0] == {
        "start": 0.0,
        "end": 2.0,
        "kind": "sound",
        "name": "bell",
        "section": 0,
    }
    assert data["events"][-1]["end"] == data["duration"]
    for e in data["events"]:
        # Every time lands on a whole sample at the session rate.
        for key in ("start", "end"):
            assert abs(e[key] * 44100 - round(e[key] * 44100)) < 0.05


@given(
    st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=40),
    st.integers(min_value=0, max_value=10**8),
)
def test_share_out_sums_exactly_and_stays_proportional(nominals, total):
    shares = share_out(nominals, total)
    whole = sum(nominals)
    if whole == 0:
        assert shares == [0] * len(nominals)
        return
    assert sum(shares) == total
    assert all(s >= 0 for s in shares)
    for share, nominal in zip(shares, nominals):
        assert abs(share - nominal * total / whole) <= 1


def test_clock_reads_like_a_person_would():
    assert clock(7.5) == "0:07.5"
    assert clock(482) == "8:02"
    assert clock(3903) == "1:05:03"


def test_clock_never_shows_sixty_seconds():
    assert clock(59.97) == "1:00"
    assert clock(599.96) == "10:00"
    assert clock(3599.99) == "1:00:00"
