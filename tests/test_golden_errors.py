"""Golden error files: every bad-*.yaml gives exactly the lines in its .errors.txt.

Regenerate with `python -m tests.regen_golden` and read the diff.
"""

from __future__ import annotations

import pytest
from regen_golden import error_lines, errors_path, golden_cases, is_bad, load_golden

BAD = [path for path in golden_cases() if is_bad(path)]
GOOD = [path for path in golden_cases() if not is_bad(path)]


def test_there_are_enough_cases():
    assert len(BAD) >= 25
    assert len(GOOD) >= 8


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_script_gives_its_golden_errors(path):
    expected = errors_path(path).read_text(encoding="utf-8")
    assert error_lines(path) == expected


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_good_script_loads(path):
    script = load_golden(path)
    assert script.sections
    assert not errors_path(path).exists()
