"""`prtvoice play` end to end: the real CLI in a subprocess, real eSpeak NG
speech, real PortAudio into a PulseAudio null sink, recorded from its monitor.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from prtvoice import paths, session
from prtvoice.config import load_config
from prtvoice.render import render

SR = 44100

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

TWO_PARTS = """\
prtvoice: 1
title: Two parts
kind: custom
sections:
  - title: First part
    steps:
      - say: One.
      - pause: 300ms
  - title: Second part
    steps:
      - say: This is the second part, and it goes on for a little while.
      - pause: 8s
      - say: The end.
"""


def prtvoice(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "prtvoice", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, **kwargs.pop("env", {})}, **kwargs,
    )  # fmt: skip


def planned(path, **make):
    """The exact plan and its rendered samples, with the same voice bank and cache."""
    config = load_config()
    options = session.options_from(config)
    script = session.load(str(path))
    voices = session.voice_bank(config, options)
    sounds = session.sound_bank(options)
    try:
        plan = session.make_plan(script, voices=voices, sounds=sounds, options=options, **make)
        audio = np.concatenate(list(render(plan, voices=voices, sounds=sounds, options=options)))
    finally:
        voices.close()
    return plan, audio[:, 0]


def locate(recording: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    from pulse import find_onset

    return find_onset(recording, reference)


@pytest.mark.playback
def test_play_starts_fast_and_plays_exactly_the_plan(pulse_sink, script_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PRTVOICE_CACHE", str(tmp_path / "cold-cache"))  # a cold cache
    path = script_dir / "short.yaml"
    path.write_text(SHORT)
    recorder = pulse_sink.record()
    launched = time.perf_counter()
    process = prtvoice("play", str(path))
    out, err = process.communicate(timeout=120)
    recording = recorder.stop()
    assert process.returncode == 0, err
    assert out == ""  # no status line without a terminal
    plan, expected = planned(path)  # the same clips, now from the cache the play made
    first = int(np.flatnonzero(np.abs(expected) > 1e-3)[0])
    lag, match = locate(recording.samples, expected[first : first + 2 * SR])
    start = lag - first
    heard = recording.samples[start : start + plan.frames]
    assert match > 0.999
    assert len(heard) == plan.frames
    assert np.max(np.abs(heard - expected)) < 1e-3  # same content, same spacing, no gap
    assert not np.any(np.abs(recording.samples[start + plan.frames :]) > 1e-4)  # and no more
    first_sound = recording.arrival(lag) - launched
    print(f"\nplay (cold cache): first sound at the sink {first_sound * 1000:.0f} ms after launch")
    # The brief asks for 0.5 s; this bound only catches a session planned whole first.
    assert first_sound < 3.0


@pytest.mark.playback
def test_stop_remembers_the_section_and_resume_continues_there(pulse_sink, script_dir):
    path = script_dir / "two.yaml"
    path.write_text(TWO_PARTS)
    plan, expected = planned(path)
    second = plan.sections[1]
    speech = expected[second.start : second.start + SR]  # the second part's first line
    recorder = pulse_sink.record()
    process = prtvoice("play", str(path))
    deadline = time.monotonic() + 60
    # Stop once the second part is being heard (found in the audio, not timed).
    while locate_or_none(recorder.so_far()[-8 * SR :], speech) is None:
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    recorder.stop()
    assert process.returncode == 130, err
    assert "stopped in section 2 (Second part)" in err
    saved = json.loads((paths.state_dir() / "positions.json").read_text())
    assert [entry["section"] for entry in saved.values()] == [1]

    recorder = pulse_sink.record()
    process = prtvoice("play", str(path), "--resume")
    _out, err = process.communicate(timeout=60)
    recording = recorder.stop().samples
    assert process.returncode == 0, err
    part = expected[second.start : second.end]
    lag, match = locate(recording, part)
    assert match > 0.999
    # The resumed session is the second part and nothing before it.
    assert not np.any(np.abs(recording[: lag - SR // 10]) > 1e-4)
    assert locate_or_none(recording, expected[: plan.sections[0].end]) is None
    assert not (paths.state_dir() / "positions.json").read_text().count('"section"')


def locate_or_none(recording: np.ndarray, reference: np.ndarray):
    if len(recording) < len(reference):
        return None
    lag, match = locate(recording, reference)
    return lag if match > 0.99 else None


def test_list_devices(pulse_sink):
    process = prtvoice("play", "--list-devices")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "default" in out


def test_list_devices_with_no_device_says_so_and_exits_4(tmp_path):
    process = prtvoice("play", "--list-devices", env={"PULSE_SERVER": f"unix:{tmp_path}/none"})
    out, err = process.communicate(timeout=60)
    assert process.returncode == 4, (out, err)
    assert out == "" and err.startswith("error: no audio output device found:"), err
    assert "Traceback" not in err


def test_an_unknown_device_exits_4_with_a_plain_message(pulse_sink, script_dir):
    path = script_dir / "short.yaml"
    path.write_text(SHORT)
    process = prtvoice("play", str(path), "--device", "no such card")
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 4
    assert err.startswith("error: no output device matches 'no such card'")
    assert "--list-devices" in err and "Traceback" not in err


def test_no_sound_server_exits_4_and_suggests_export(script_dir, tmp_path):
    path = script_dir / "short.yaml"
    path.write_text(SHORT)
    process = prtvoice("play", str(path), env={"PULSE_SERVER": f"unix:{tmp_path}/none"})
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 4, err
    assert err.startswith("error: ") and "prtvoice export" in err and "Traceback" not in err


def test_an_error_found_while_portaudio_loads_is_reported_every_time(pulse_sink, script_dir):
    # PortAudio loads on a thread while `play` sets the session up, and it points
    # stderr at /dev/null while it initialises: an error found meanwhile (here an
    # unknown --ambience, checked just after) must still be printed, and the
    # process must not exit inside PortAudio's start (it crashed so: SIGSEGV).
    path = script_dir / "short.yaml"
    path.write_text(SHORT)
    for _ in range(8):
        process = prtvoice("play", str(path), "--ambience", "no-such-bed")
        _out, err = process.communicate(timeout=60)
        assert process.returncode == 1, err
        assert err.startswith("error: unknown ambience 'no-such-bed'"), err


def test_missing_portaudio_exits_4_and_says_what_to_install(script_dir, tmp_path):
    fake = tmp_path / "no-portaudio"
    fake.mkdir()
    # What sounddevice does when libportaudio is not installed.
    (fake / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    path = script_dir / "short.yaml"
    path.write_text(SHORT)
    env = {"PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    process = prtvoice("play", str(path), env=env)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 4, err
    assert "apt install libportaudio2" in err and "prtvoice export" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "1", "--only", "2"], "use --from or --only, not both"),
        (["--resume", "--from", "1"], "--resume picks the section itself"),
        (["--volume", "2"], "--volume must be between 0 and 1"),
        (["--from", "9"], "has sections 1 to 2, not 9"),
        (["--only", "nothing like it"], "has no section 'nothing like it'"),
        (["--ambience", "no-such-bed"], "unknown ambience 'no-such-bed'"),
    ],
)
def test_bad_flags_are_refused_before_any_sound(script_dir, args, message):
    from typer.testing import CliRunner

    from prtvoice.cli import app

    path = script_dir / "short.yaml"
    path.write_text(SHORT)
    result = CliRunner().invoke(app, ["play", str(path), *args])
    assert result.exit_code == 1, result.output
    assert message in result.output


def test_play_has_help():
    from typer.testing import CliRunner

    from prtvoice.cli import app

    result = CliRunner().invoke(app, ["play", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--minutes",
        "--from",
        "--only",
        "--device",
        "--volume",
        "--ambience",
        "--resume",
        "--list-devices",
    ):
        assert flag in result.output


@pytest.mark.playback
def test_keys_on_a_terminal_pause_skip_and_quit(pulse_sink, script_dir):
    """The real CLI on a pseudo-terminal: single keys (no Enter) drive it, the
    status line shows the state, and the terminal is restored afterwards."""
    import pty
    import termios
    import threading

    path = script_dir / "two.yaml"
    path.write_text(TWO_PARTS)
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    shown: list[str] = []

    def read_screen():
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            shown.append(data.decode(errors="replace"))

    process = subprocess.Popen(
        [sys.executable, "-m", "prtvoice", "play", str(path)],
        stdin=slave, stdout=slave, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    threading.Thread(target=read_screen, daemon=True).start()

    def screen_shows(text: str, after: int = 0) -> None:
        deadline = time.monotonic() + 60
        while text not in "".join(shown)[after:]:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "".join(shown)[-500:]
            time.sleep(0.02)

    try:
        screen_shows("1/2 First part")
        mark = len("".join(shown))
        os.write(master, b" ")  # space: pause
        screen_shows("paused", mark)
        os.write(master, b" ")  # space: resume
        mark = len("".join(shown))
        os.write(master, b"\x1b[C")  # right arrow: next section
        screen_shows("2/2 Second part", mark)
        os.write(master, b"q")
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    after = termios.tcgetattr(slave)
    os.close(slave)
    assert process.returncode == 0, err
    assert "stopped in section 2 (Second part)" in err
    assert after == before  # raw mode undone
