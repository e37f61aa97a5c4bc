"""`prtvoice check`: exit statuses and the exact messages, through CliRunner (and how it leaves)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prtvoice.cli import app
from prtvoice.paths import bundled_scripts_dir
from prtvoice.session import script_files

runner = CliRunner()

GOOD = """\
prtvoice: 1
title: Tiny
kind: custom
sections:
  - title: One
    steps:
      - say: Hello.
"""


def test_every_bundled_script_passes():
    files = [str(p) for p in script_files(bundled_scripts_dir())]
    assert len(files) >= 10
    result = runner.invoke(app, ["check", *files])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("ok: ") == len(files)


def test_problems_are_reported_with_file_line_and_column(script_dir: Path):
    bad = script_dir / "bad.yaml"
    bad.write_text(
        GOOD.replace("kind: custom", "kind: mindfullness").replace("title: One", "titel: One")
    )
    good = script_dir / "good.yaml"
    good.write_text(GOOD)
    result = runner.invoke(app, ["check", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"ok: {good}" in result.stdout
    lines = result.stderr.splitlines()
    assert f"error: {bad}:3:7: unknown kind 'mindfullness' (did you mean 'mindfulness'?)" in lines
    assert f"error: {bad}:5:5: unknown section key 'titel' (did you mean 'title'?)" in lines
    assert lines[-1] == "1 of 2 file(s) have problems"
    assert "Traceback" not in result.output


def test_set_fills_a_variable_the_script_lacks(script_dir: Path):
    script = script_dir / "vars.yaml"
    script.write_text(GOOD.replace("Hello.", "Hello, {name}."))
    missing = runner.invoke(app, ["check", str(script)])
    assert missing.exit_code == 1
    assert "name" in missing.stderr
    given = runner.invoke(app, ["check", str(script), "--set", "name=Sam"])
    assert given.exit_code == 0, given.output


def test_a_malformed_set_is_a_usage_problem(script_dir: Path):
    script = script_dir / "ok.yaml"
    script.write_text(GOOD)
    result = runner.invoke(app, ["check", str(script), "--set", "novalue"])
    assert result.exit_code == 1
    assert "--set wants KEY=VALUE" in result.stderr


def test_a_missing_file_is_reported_not_raised(tmp_path: Path):
    result = runner.invoke(app, ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "nope.yaml" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_no_files_is_a_usage_error():
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 2


@pytest.mark.parametrize("good", [True, False])
def test_the_command_line_leaves_without_collecting_garbage(tmp_path: Path, good: bool):
    # Exiting, Python ran garbage collections over every object left (numpy's,
    # typer's ...), ~70 ms after an export; the command line freezes them first,
    # whatever the outcome. Exit handlers (this probe's among them) still run.
    script = tmp_path / "s.yaml"
    script.write_text(GOOD if good else GOOD.replace("say: Hello.", "pause: 3 parsecs"))
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
        f"sys.argv = ['prtvoice', 'check', {str(script)!r}]\n"
        "from prtvoice.cli import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == (0 if good else 1), done.stderr
    assert done.stdout.strip().splitlines()[-1] == "frozen True"
