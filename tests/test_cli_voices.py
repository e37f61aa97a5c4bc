"""`prtvoice voices`: the real engine's voices, filtered by language."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from prtvoice.cli import app

runner = CliRunner()


def test_voices_lists_real_espeak_voices():
    result = runner.invoke(app, ["voices", "--json"])
    assert result.exit_code == 0, result.output
    voices = json.loads(result.stdout)
    assert len(voices) > 50
    ids = {v["id"] for v in voices}
    assert any("en-us" in i for i in ids)


def test_language_filter():
    result = runner.invoke(app, ["voices", "--language", "de", "--json"])
    assert result.exit_code == 0
    voices = json.loads(result.stdout)
    assert voices and all(
        any(lang.startswith("de") for lang in v["languages"]) or "de" in v["id"] for v in voices
    )
    table = runner.invoke(app, ["voices", "-l", "en"])
    assert "English" in table.stdout
