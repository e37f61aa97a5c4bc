"""Every command has help text with an example, and the README documents it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from prtvoice import __version__
from prtvoice.cli import app

runner = CliRunner()
README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(get_command(app).commands)


def test_the_expected_commands_exist():
    assert set(COMMANDS) >= {
        "check",
        "outline",
        "list",
        "voices",
        "schema",
        "new",
        "export",
        "play",
        "doctor",
    }


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_with_an_example(name: str):
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0
    assert f"prtvoice {name}" in result.stdout  # an example line
    assert "Usage:" in result.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_in_the_readme(name: str):
    assert f"prtvoice {name}" in README


def test_version_and_top_level_help():
    assert runner.invoke(app, ["--version"]).stdout.strip() == f"prtvoice {__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "not caused by an ongoing" in result.stdout  # the safety note


def test_an_unknown_command_is_a_usage_error():
    result = runner.invoke(app, ["plya"])
    assert result.exit_code == 2
