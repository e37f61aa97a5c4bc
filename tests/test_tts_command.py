"""The command-line engine with the real espeak-ng."""

from __future__ import annotations

import sys

import pytest

from prtvoice.errors import VoiceError
from prtvoice.tts.clip import read_engine_wav
from prtvoice.tts.command_engine import CommandEngine


def test_argv_form(tmp_path):
    engine = CommandEngine(
        argv=["espeak-ng", "-v", "{voice}", "-s", "{wpm}", "-w", "{out}", "{text}"]
    )
    out = tmp_path / "a.wav"
    engine.synthesize("Hello there, friend.", voice_id="en-us", rate=1.0, volume=1, out=out)
    samples, rate = read_engine_wav(out)
    assert rate == 22050 and samples.size > 0.5 * rate
    slow = tmp_path / "slow.wav"
    engine.synthesize("Hello there, friend.", voice_id="en-us", rate=0.6, volume=1, out=slow)
    assert read_engine_wav(slow)[0].size > 1.3 * samples.size


def test_stdin_form_takes_text_that_looks_like_an_option(tmp_path):
    engine = CommandEngine(
        argv=["espeak-ng", "-v", "{voice}", "--stdin", "-w", "{out}"], stdin=True
    )
    out = tmp_path / "b.wav"
    engine.synthesize("--help me relax", voice_id="en", rate=1, volume=1, out=out)
    assert read_engine_wav(out)[0].size > 10_000


def test_failing_command_carries_its_stderr(tmp_path):
    code = "import sys; sys.stderr.write('no voice ' + sys.argv[1]); sys.exit(2)"
    engine = CommandEngine(argv=[sys.executable, "-c", code, "{voice}", "{out}", "{text}"])
    with pytest.raises(VoiceError, match="failed with status 2: no voice xx"):
        engine.synthesize("hi", voice_id="xx", rate=1, volume=1, out=tmp_path / "c.wav")
    # espeak-ng itself, writing where it cannot: an error, not a silent clip.
    real = CommandEngine(argv=["espeak-ng", "-w", "{out}", "{text}"])
    with pytest.raises(VoiceError):
        real.synthesize("hi", voice_id="en", rate=1, volume=1, out=tmp_path / "no" / "c.wav")
    missing = CommandEngine(argv=["no-such-tts-program", "{out}", "{text}"])
    with pytest.raises(VoiceError, match="was not found"):
        missing.synthesize("hi", voice_id="v", rate=1, volume=1, out=tmp_path / "d.wav")


def test_hanging_command_times_out(tmp_path):
    engine = CommandEngine(
        argv=[sys.executable, "-c", "import time; time.sleep(30)", "{out}", "{text}"], timeout=1.0
    )
    with pytest.raises(VoiceError, match="hung"):
        engine.synthesize("hi", voice_id="v", rate=1, volume=1, out=tmp_path / "e.wav")


def test_bad_command_configuration():
    with pytest.raises(VoiceError, match="needs \\{out\\}"):
        CommandEngine(argv=["espeak-ng", "{text}"])
    with pytest.raises(VoiceError, match="bad placeholder"):
        CommandEngine(argv=["espeak-ng", "{nope}", "{out}", "{text}"])
