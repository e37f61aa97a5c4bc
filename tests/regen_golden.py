"""Regenerate the golden files under tests/data/scripts.

    python -m tests.regen_golden            # every golden case
    python -m tests.regen_golden bad-kind   # only these (file stems)

Convention: `bad-*.yaml` must fail to load and get `<name>.errors.txt` (the
exact error lines, paths relative to tests/data/scripts); every other
`*.yaml` must load (its `<name>.plan.json` is the planner's golden, written
by `regen_plan` below). Files under parts/ are only ever included.

Read the diff before committing: a changed golden is a changed behaviour.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from prtvoice.errors import ScriptError
from prtvoice.script import Script, load_script

SCRIPTS = Path(__file__).resolve().parent / "data" / "scripts"
# The sound library the golden scripts see (the CLI passes the bundled and user ones).
AUDIO_DIRS = (Path(__file__).resolve().parent / "data" / "audio-library",)


def golden_cases() -> list[Path]:
    """Every golden script, sorted by name."""
    return sorted(SCRIPTS.glob("*.yaml"))


def is_bad(path: Path) -> bool:
    return path.name.startswith("bad-")


def load_golden(path: Path) -> Script:
    """Load a golden script the way every golden test does."""
    return load_script(path, audio_dirs=AUDIO_DIRS)


def error_lines(path: Path) -> str:
    """The errors a bad script gives, as the golden file holds them."""
    try:
        load_golden(path)
    except ScriptError as exc:
        lines = []
        for problem in exc.problems:
            shown = Path(problem.file)
            if shown.is_absolute():
                shown = shown.relative_to(SCRIPTS)
            text = f"{shown.as_posix()}:{problem.line}:{problem.col}: {problem.message}"
            lines.append(f"{text} ({problem.hint})" if problem.hint else text)
        return "\n".join(lines) + "\n"
    raise AssertionError(f"{path.name} loads without errors, but bad-* scripts must fail")


def errors_path(path: Path) -> Path:
    return path.with_suffix(".errors.txt")


# The planner's goldens hook in here (tests/test_golden.py writes plans).
regen_plan: Callable[[Path], None] | None = None


def main(argv: list[str]) -> int:
    global regen_plan
    if regen_plan is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/fakes.py
        from tests.test_golden import write_plan

        regen_plan = write_plan
    wanted = set(argv)
    failed = 0
    for path in golden_cases():
        if wanted and path.stem not in wanted:
            continue
        try:
            if is_bad(path):
                errors_path(path).write_text(error_lines(path), encoding="utf-8")
                print(f"wrote {errors_path(path).name}")
            else:
                load_golden(path)  # a good script must load
                if regen_plan is not None:
                    regen_plan(path)
        except (AssertionError, ScriptError) as exc:
            failed += 1
            print(f"FAILED {path.name}: {exc}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
