"""`prtvoice new`: a ready-to-edit script that passes check; never clobbers a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from prtvoice.cli import app
from prtvoice.names import KINDS
from prtvoice.script import load_script

runner = CliRunner()


@pytest.mark.parametrize(
    "start", ["somatic-tracking", "grounding", *[f"template:{k}" for k in KINDS]]
)
def test_new_script_passes_check(tmp_path: Path, start: str):
    target = tmp_path / "mine.yaml"
    result = runner.invoke(app, ["new", str(target), "--from", start, "--title", "Mine"])
    assert result.exit_code == 0, result.output
    checked = runner.invoke(app, ["check", str(target)])
    assert checked.exit_code == 0, checked.output
    assert load_script(target).title == "Mine"


def test_new_refuses_to_replace_without_force(tmp_path: Path):
    target = tmp_path / "mine.yaml"
    target.write_text("my precious notes\n")
    result = runner.invoke(app, ["new", str(target), "--from", "breathing"])
    assert result.exit_code == 1
    assert f"error: {target} exists; use --force to replace it" in result.stderr
    assert target.read_text() == "my precious notes\n"
    forced = runner.invoke(app, ["new", str(target), "--from", "breathing", "--force"])
    assert forced.exit_code == 0
    assert target.read_text().startswith(("#", "prtvoice"))


def test_new_unknown_source_suggests(tmp_path: Path):
    result = runner.invoke(app, ["new", str(tmp_path / "x.yaml"), "--from", "groundin"])
    assert result.exit_code == 1
    assert "grounding" in result.stderr
    assert not (tmp_path / "x.yaml").exists()
