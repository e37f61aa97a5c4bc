"""Golden plans: every good script in tests/data/scripts beside its expected plan JSON.

Speech lengths come from the fake voice (so the goldens do not depend on the
eSpeak NG version); cue sounds from the real sound bank. Regenerate with
`python -m tests.regen_golden` and read the diff before committing.

Also the properties that must hold for every golden case: rendering twice
gives identical samples, the rendered length equals the plan's, nothing clips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeSpeech

from prtvoice.options import Options
from prtvoice.plan import Plan, plan_script
from prtvoice.render import render
from prtvoice.sounds import SoundBank
from tests.regen_golden import SCRIPTS, golden_cases, is_bad, load_golden

GOOD = [p for p in golden_cases() if not is_bad(p)]
OPTIONS = Options()


def plan_of(path: Path) -> tuple[Plan, FakeSpeech, SoundBank]:
    speech = FakeSpeech(OPTIONS.sample_rate)
    sounds = SoundBank(sample_rate=OPTIONS.sample_rate, seed=OPTIONS.seed)
    plan = plan_script(load_golden(path), options=OPTIONS, speech=speech, sounds=sounds)
    return plan, speech, sounds


def plan_json(path: Path) -> str:
    data = plan_of(path)[0].to_json()
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def write_plan(path: Path) -> None:
    """The regen hook: write <name>.plan.json for a good golden script."""
    path.with_suffix(".plan.json").write_text(plan_json(path), encoding="utf-8")
    print(f"wrote {path.with_suffix('.plan.json').name}")


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_plan_matches_golden(path: Path):
    expected = path.with_suffix(".plan.json")
    assert expected.exists(), f"run `python -m tests.regen_golden {path.stem}`"
    assert plan_json(path) == expected.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_golden_renders_exactly_and_deterministically(path: Path):
    plan, speech, sounds = plan_of(path)
    first = np.concatenate(list(render(plan, voices=speech, sounds=sounds, options=OPTIONS)))
    again = np.concatenate(list(render(plan, voices=speech, sounds=sounds, options=OPTIONS)))
    assert first.shape == (plan.frames, 1)
    assert first.dtype == np.float32
    assert np.array_equal(first, again)
    assert np.max(np.abs(first)) < 1.0


def test_every_good_golden_has_a_plan_and_no_plan_is_orphaned():
    plans = {p.name.removesuffix(".plan.json") for p in SCRIPTS.glob("*.plan.json")}
    assert plans == {p.stem for p in GOOD}
