"""Transcripts are timed from the plan and parse as LRC, SRT and WebVTT."""

from __future__ import annotations

import re

import pytest
from export_helpers import HERE, VOICE

from prtvoice.plan import plan_script
from prtvoice.script import Breathe, Pause, Say, Script, Section
from prtvoice.transcript import cues, lrc, parse_transcript_kinds, srt, vtt


@pytest.fixture
def plan(options, fake_speech, fake_sounds):
    steps = (
        Say("Welcome, friend.", VOICE, HERE),
        Pause(3.0, False, HERE),
        Say("Notice <the> breath & let\n it  be.", VOICE, HERE),
        Breathe(2.0, 1.0, 3.0, 0.0, 1, "voice", VOICE, HERE),
        Say("Back to the room.", VOICE, HERE),
    )
    script = Script(
        path=HERE.file,
        id="t",
        title="Transcript test",
        kind="custom",
        summary="",
        language="en",
        duration=None,
        voice=VOICE,
        ambience=None,
        variables={},
        sections=(Section("One", steps, HERE),),
        where=HERE,
    )
    return plan_script(script, options=options, speech=fake_speech, sounds=fake_sounds)


def seconds(stamp: str) -> float:
    h, m, s = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_cues_are_the_say_events(plan):
    says = [e for e in plan.events if e.kind == "say"]
    got = cues(plan)
    assert [(c.start, c.end) for c in got] == [(e.start, e.end) for e in says]
    assert got[1].text == "Notice <the> breath & let it be."
    assert [c.text for c in cues(plan, breathing=True)].count("in") == 1


def test_lrc_headers_and_lines(plan):
    text = lrc(plan, artist="Me", album="Calm")
    assert text.startswith("[ti:Transcript test]\n[ar:Me]\n[al:Calm]\n[length:")
    stamped = re.findall(r"^\[(\d\d):(\d\d\.\d\d)\](.*)$", text, flags=re.M)
    lines = [(int(m) * 60 + float(s), t) for m, s, t in stamped if t]
    says = [e for e in plan.events if e.kind == "say"]
    assert [t for _, t in lines] == [c.text for c in cues(plan)]
    for (at, _), event in zip(lines, says, strict=True):
        assert at == pytest.approx(event.start / plan.sample_rate, abs=0.006)
    # A long pause after a line clears it.
    assert any(t == "" for _, _, t in stamped)


def test_srt_and_vtt_parse_and_match_the_plan(plan):
    sr = plan.sample_rate
    expected = [(c.start / sr, c.end / sr) for c in cues(plan)]
    blocks = srt(plan).strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [str(i) for i in range(1, len(expected) + 1)]
    for block, (start, end) in zip(blocks, expected, strict=True):
        a, b = block.splitlines()[1].split(" --> ")
        assert seconds(a) == pytest.approx(start, abs=0.001)
        assert seconds(b) == pytest.approx(end, abs=0.001)
    web = vtt(plan)
    assert web.startswith("WEBVTT")
    times = re.findall(r"^(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)$", web, flags=re.M)
    got = [v for a, b in times for v in (seconds(a), seconds(b))]
    assert got == pytest.approx([v for pair in expected for v in pair], abs=0.001)
    assert "&lt;the&gt; breath &amp; let" in web


def test_parse_kinds():
    assert parse_transcript_kinds("lrc, SRT,lrc") == ("lrc", "srt")
    assert parse_transcript_kinds(None) == ()
    with pytest.raises(ValueError, match="txt"):
        parse_transcript_kinds("lrc,txt")
