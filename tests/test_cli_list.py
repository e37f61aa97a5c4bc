"""`prtvoice list`: every bundled session with id, title, kind and duration."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from prtvoice.cli import app
from prtvoice.names import KINDS
from prtvoice.paths import bundled_scripts_dir, user_scripts_dir

runner = CliRunner()


def test_json_lists_every_bundled_script_with_its_kind():
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    ids = {e["id"] for e in entries}
    bundled = {p.stem for p in bundled_scripts_dir().glob("*.yaml")}
    assert ids == bundled
    for entry in entries:
        assert set(entry) >= {"id", "title", "kind", "duration"}
        assert entry["kind"] in KINDS
        assert 60 <= entry["duration"] <= 1800
    kinds = {e["kind"] for e in entries}
    assert kinds >= set(KINDS) - {"custom"}
    assert not any(e["id"] in ("opening", "closing") for e in entries)  # parts/ are not sessions


def test_users_own_scripts_are_listed_and_broken_ones_say_why():
    folder = user_scripts_dir()
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text(
        "prtvoice: 1\ntitle: Mine\nkind: custom\nduration: 2m\n"
        "sections: [{title: A, steps: [{say: Hi.}, {pause: 10s~}]}]\n"
    )
    (folder / "broken.yaml").write_text("prtvoice: 1\ntitle: Broken\n")
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    mine = next(line for line in lines if line.startswith("mine "))
    assert "custom" in mine and "2:00" in mine and "Mine" in mine
    broken = next(line for line in lines if line.startswith("broken "))
    assert "does not load" in broken
    entries = json.loads(runner.invoke(app, ["list", "--json"]).stdout)
    assert next(e for e in entries if e["id"] == "mine")["duration"] == 120.0
