"""`prtvoice export` through the CLI: flags checked before work, real end-to-end exports."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from export_helpers import decode
from typer.testing import CliRunner

from prtvoice.cli import app

SCRIPT = """\
prtvoice: 1
title: Short arrival
kind: mindfulness
summary: A short test session.
sections:
  - title: Arriving
    steps:
      - say: Welcome. Let your shoulders soften.
      - pause: 2s
  - title: Leaving
    steps:
      - say: Now come back to the room.
"""


@pytest.fixture
def script(script_dir):
    path = script_dir / "arrival.yaml"
    path.write_text(SCRIPT, encoding="utf-8")
    return path


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_help_has_examples():
    result = run("export", "--help")
    assert result.exit_code == 0
    assert "prtvoice export grounding" in result.output and "--transcript" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--transcript", "lrc,txt"], "error: --transcript: unknown transcript format 'txt'"),
        (["--format", "aiff"], "error: --format: unknown format 'aiff'"),
        (["-o", "x.mp3", "--format", "ogg"], "does not match -o x.mp3"),
        (["-o", "x.aiff"], "unknown audio suffix '.aiff'"),
        (["--minutes", "0"], "--minutes must be more than 0"),
    ],
)
def test_bad_flags_exit_1_before_any_work(script, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = run("export", str(script), *args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert not list(tmp_path.glob("*.mp3"))


def test_existing_target_needs_force(script, tmp_path):
    target = tmp_path / "out.mp3"
    target.write_bytes(b"keep me")
    result = run("export", str(script), "-o", str(target))
    assert result.exit_code == 1
    assert f"error: {target} already exists; use --force to replace" in result.output
    assert target.read_bytes() == b"keep me"


def test_real_export_with_transcripts_then_force(script, tmp_path):
    target = tmp_path / "arrival.m4a"
    result = run("export", str(script), "-o", str(target), "--transcript", "lrc,vtt")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {target} (")
    assert "LUFS" in result.output and "arrival.lrc" in result.output
    assert len(decode(target)) > 44100
    chapters = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-of", "json", "-show_chapters", str(target)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["chapters"]
    assert [c["tags"]["title"] for c in chapters] == ["Arriving", "Leaving"]
    lrc = (tmp_path / "arrival.lrc").read_text(encoding="utf-8")
    assert "[ti:Short arrival]" in lrc and "Welcome. Let your shoulders soften." in lrc
    assert (tmp_path / "arrival.vtt").read_text(encoding="utf-8").startswith("WEBVTT")
    again = run("export", str(script), "-o", str(target), "--transcript", "lrc,vtt", "-q")
    assert again.exit_code == 1
    forced = run("export", str(script), "-o", str(target), "--transcript", "lrc", "--force", "-q")
    assert forced.exit_code == 0 and forced.output == ""


def test_folder_exports_a_batch_with_playlist(script, script_dir, tmp_path):
    (script_dir / "second.yaml").write_text(
        SCRIPT.replace("Short arrival", "Second one"), encoding="utf-8"
    )
    out = tmp_path / "phone"
    result = run("export", str(script_dir), "-o", str(out), "--format", "opus")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "01-arrival.opus",
        "02-second.opus",
        "phone.m3u8",
    ]
    playlist = (out / "phone.m3u8").read_text(encoding="utf-8").splitlines()
    assert playlist[0] == "#EXTM3U" and playlist[2] == "01-arrival.opus"
    assert playlist[3].endswith(",prtvoice - Second one")


def _record(monkeypatch, events: list[str], owner, name: str, label: str, kept=None) -> None:
    """Note `label` in `events` whenever owner.name is called (and keep what it returns)."""
    original = getattr(owner, name)

    def noted(*args, **kwargs):
        events.append(label)
        result = original(*args, **kwargs)
        if kept is not None:
            kept.append(result)
        return result

    monkeypatch.setattr(owner, name, noted)


def _watch_the_engine(monkeypatch) -> tuple[list[str], list]:
    """Record when the speech engine starts, the encoder is chosen and the script is read."""
    from prtvoice import encode, session
    from prtvoice.tts import engine as tts_engine

    events: list[str] = []
    engines: list = []
    _record(monkeypatch, events, tts_engine, "start_engine", "engine", engines)
    _record(monkeypatch, events, session, "load", "script")
    _record(monkeypatch, events, encode, "choose_encoder", "encoder")
    return events, engines


def _workers_gone(engine) -> bool:
    warm = engine._warm_worker
    return not engine._idle and (warm is None or warm.process.poll() is not None)


def test_one_export_starts_its_speech_worker_before_reading_the_script(
    script, tmp_path, monkeypatch
):
    # A worker takes ~0.1 s to start: started before the checks (ffmpeg's encoders),
    # the imports and the script, it is ready when a re-export's changed line (or a
    # first export's speech) needs it.
    events, engines = _watch_the_engine(monkeypatch)
    result = run("export", str(script), "-o", str(tmp_path / "s.mp3"), "-q")
    assert result.exit_code == 0, result.output
    assert events[:3] == ["engine", "encoder", "script"]  # (export_plan asks for the encoder again)
    assert _workers_gone(engines[0])  # closed with the session's voices
    assert (tmp_path / "s.mp3").stat().st_size > 1000


def test_a_bad_script_stops_the_speech_worker_started_for_it(script_dir, tmp_path, monkeypatch):
    events, engines = _watch_the_engine(monkeypatch)
    bad = script_dir / "bad.yaml"
    bad.write_text(SCRIPT.replace("pause: 2s", "pause: 3 parsecs"), encoding="utf-8")
    result = run("export", str(bad), "-o", str(tmp_path / "s.mp3"))
    assert result.exit_code == 1
    assert "bad.yaml:9:16:" in result.output and "parsecs" in result.output
    assert events == ["engine", "encoder", "script"]  # nothing after the script
    assert _workers_gone(engines[0])
    assert not list(tmp_path.glob("*.mp3"))


def test_a_refused_target_stops_the_speech_worker_started_for_it(script, tmp_path, monkeypatch):
    events, engines = _watch_the_engine(monkeypatch)
    (tmp_path / "s.mp3").write_bytes(b"mine")
    result = run("export", str(script), "-o", str(tmp_path / "s.mp3"))
    assert result.exit_code == 1 and "--force" in result.output
    assert events == ["engine", "encoder"]  # refused before the script is read
    assert _workers_gone(engines[0])
    assert (tmp_path / "s.mp3").read_bytes() == b"mine"


def _watch_encoders(monkeypatch) -> tuple[list[str], list]:
    """Record when ffmpegs start (and the script is read); keep the encoders."""
    from prtvoice import early, session
    from prtvoice import export as exporting

    events: list[str] = []
    made: list = []
    _record(monkeypatch, events, early, "Encoder", "ffmpeg", made)  # started early
    _record(monkeypatch, events, exporting, "Encoder", "ffmpeg", made)  # or later
    _record(monkeypatch, events, session, "load", "script")
    return events, made


def test_a_reexport_starts_its_ffmpeg_before_reading_the_script(script, tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "s.mp3"
    assert run("export", str(script), "-o", str(target), "-q").exit_code == 0
    first = decode(target, sample_rate=22050)
    events, made = _watch_encoders(monkeypatch)
    result = run("export", str(script), "-o", str(target), "--force", "-q")
    assert result.exit_code == 0, result.output
    # The remembered gain's one pass, in the ffmpeg started before the script was read
    # (a short session: one ffmpeg; a second, for halves, would also start when the
    # machine has two cores, and is stopped unused).
    assert events[0] == "ffmpeg" and events.index("script") <= 2
    assert all(e == "ffmpeg" for e in events[: events.index("script")])
    assert events[events.index("script") :] == ["script"]  # no ffmpeg started after it
    assert made[0]._process.returncode == 0  # it encoded the file
    assert sorted(p.name for p in target.parent.iterdir()) == ["s.mp3"]
    again = decode(target, sample_rate=22050)
    assert len(again) == len(first) and np.abs(again - first).max() < 1e-3  # the same session


def test_a_first_export_starts_no_ffmpeg_before_its_script(script, tmp_path, monkeypatch):
    events, _ = _watch_encoders(monkeypatch)
    result = run("export", str(script), "-o", str(tmp_path / "s.mp3"), "-q")
    assert result.exit_code == 0, result.output
    assert events[0] == "script"  # no gain remembered: measured first, ffmpeg beside it


def test_a_reexport_of_a_broken_script_stops_its_early_ffmpegs(script, tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "s.mp3"
    assert run("export", str(script), "-o", str(target), "-q").exit_code == 0
    before = target.read_bytes()
    script.write_text(SCRIPT.replace("pause: 2s", "pause: 3 parsecs"), encoding="utf-8")
    events, made = _watch_encoders(monkeypatch)
    result = run("export", str(script), "-o", str(target), "--force")
    assert result.exit_code == 1 and "parsecs" in result.output
    assert events[0] == "ffmpeg" and events[-1] == "script"
    assert all(e._process.poll() is not None for e in made)  # none left waiting
    assert sorted(p.name for p in target.parent.iterdir()) == ["s.mp3"]  # no partial files
    assert target.read_bytes() == before


def test_an_ffmpeg_without_the_encoder_stops_the_export_before_any_speech(
    script, tmp_path, monkeypatch
):
    # ffmpeg's encoders are asked on a thread while the rest is checked: its answer
    # still comes before the script is read, and its error is the one reported.
    from prtvoice.encode import available_encoders
    from prtvoice.ffmpeg import find_ffmpeg

    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho ' A....D flac   FLAC'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PRTVOICE_FFMPEG", str(fake))
    find_ffmpeg.cache_clear()
    available_encoders.cache_clear()
    try:
        events, engines = _watch_the_engine(monkeypatch)
        result = run("export", str(script), "-o", str(tmp_path / "s.mp3"))
    finally:
        find_ffmpeg.cache_clear()
        available_encoders.cache_clear()
    assert result.exit_code == 5  # ffmpeg's (ExitStatus.ENCODER)
    assert "cannot encode mp3" in result.output and "no libmp3lame" in result.output
    assert "Traceback" not in result.output
    assert events == ["engine", "encoder"]  # the script was never read
    assert _workers_gone(engines[0])
    assert not list(tmp_path.glob("s.*"))
