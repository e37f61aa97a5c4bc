"""`prtvoice doctor`: says what works, how to fix what does not; exit 0 iff export works."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from prtvoice.cli import app
from prtvoice.doctor import Check, export_ready
from prtvoice.ffmpeg import find_ffmpeg


def doctor(*args: str):
    return CliRunner().invoke(app, ["doctor", *args])


def test_json_lists_every_check_and_the_exit_status_follows_required_ones():
    result = doctor("--json")
    data = json.loads(result.output)
    names = [c["name"] for c in data["checks"]]
    for wanted in (
        "text-to-speech",
        "ffmpeg",
        "encoder mp3",
        "encoder opus",
        "portaudio",
        "output device",
        "cache folder",
        "config file",
    ):
        assert wanted in names
    assert data["ok"] == all(c["ok"] for c in data["checks"] if c["required"])
    assert result.exit_code == (0 if data["ok"] else 1)
    by_name = {c["name"]: c for c in data["checks"]}
    assert by_name["ffmpeg"]["ok"] and by_name["encoder mp3"]["detail"] == "libmp3lame"
    assert not by_name["output device"]["required"]  # playback only: a warning
    for check in data["checks"]:
        if not check["ok"]:
            assert check["fix"]


def test_missing_ffmpeg_fails_with_a_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PRTVOICE_FFMPEG", str(tmp_path / "no-ffmpeg"))
    find_ffmpeg.cache_clear()
    try:
        result = doctor()
    finally:
        find_ffmpeg.cache_clear()
    assert result.exit_code == 1
    assert "FAIL  ffmpeg: PRTVOICE_FFMPEG names" in result.output
    assert "fix: apt install ffmpeg, or pip install imageio-ffmpeg" in result.output
    assert "not ready to export" in result.output


def test_playback_problems_are_warnings_only():
    checks = [
        Check("ffmpeg", True, "x"),
        Check("output device", False, "none", "use export", required=False),
    ]
    assert export_ready(checks)
    assert not export_ready([*checks, Check("cache folder", False, "ro", "fix")])
