"""`prtvoice outline`: the contract's JSON plan and a readable table, with the real voice."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from prtvoice.cli import app

runner = CliRunner()

SCRIPT = """\
prtvoice: 1
title: Outline me
kind: breathing
duration: 1m
sections:
  - title: Arriving
    steps:
      - sound: bell
      - say: Hello {name}. [1s] Settle in.
      - pause: 5s~
  - title: Breathing
    steps:
      - breathe: {pattern: 4-2-6, cycles: 2, cue: both}
      - pause: 10s~
variables:
  name: friend
"""


def outline_json(*args: str) -> dict:
    result = runner.invoke(app, ["outline", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_plan_follows_the_contract(script_dir: Path):
    path = script_dir / "o.yaml"
    path.write_text(SCRIPT)
    plan = outline_json(str(path), "--set", "name=Sam")
    assert plan["id"] == "o" and plan["title"] == "Outline me"
    assert plan["duration"] == 60.0  # the target, met to the sample
    assert [s["title"] for s in plan["sections"]] == ["Arriving", "Breathing"]
    kinds = [e["kind"] for e in plan["events"]]
    assert kinds[:5] == ["sound", "say", "pause", "say", "pause"]
    assert kinds[5:10] == ["inhale", "hold", "exhale", "inhale", "hold"]
    assert plan["events"][1]["text"] == "Hello Sam."
    for before, after in zip(plan["events"], plan["events"][1:]):
        assert after["start"] == before["end"]
    breath = plan["events"][5]
    assert breath["end"] - breath["start"] == 4.0
    assert plan["events"][-1]["end"] == plan["duration"]


def test_minutes_refits_and_bad_minutes_say_why(script_dir: Path):
    path = script_dir / "o.yaml"
    path.write_text(SCRIPT)
    assert outline_json(str(path), "--minutes", "1.5")["duration"] == 90.0
    result = runner.invoke(app, ["outline", str(path), "--minutes", "30"])
    assert result.exit_code == 1
    assert "cannot make the session last 30:00" in result.stderr
    assert "(shortest)" in result.stderr and "(longest)" in result.stderr


def test_table_shows_sections_times_and_scaling():
    result = runner.invoke(app, ["outline", "somatic-tracking-micro"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("Somatic tracking, a short practice  (somatic-tracking-micro")
    assert "flexible pause(s)" in out and "to meet the target" in out
    assert "\n== 1. " in out
    assert "say    “" in out
    assert out.rstrip().endswith("end")


def test_unknown_script_suggests_a_bundled_id():
    result = runner.invoke(app, ["outline", "grounding2"])
    assert result.exit_code == 1
    assert "no script file or bundled script named 'grounding2'" in result.stderr
    assert "grounding" in result.stderr


def test_script_errors_are_located(script_dir: Path):
    path = script_dir / "bad.yaml"
    path.write_text(SCRIPT.replace("cycles: 2", "cycles: -2"))
    result = runner.invoke(app, ["outline", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}:13:")
