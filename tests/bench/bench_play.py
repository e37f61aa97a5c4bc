"""How soon `prtvoice play` makes its first sound (not a test): a small matrix.

Scripts are the bench's (tests/bench/bench.py: distinct lines, 5 s pauses),
20 minutes and 2 hours, opening with speech as generated or with a bell
prepended. Each is played cold (an empty clip cache) and warm (the same
cache again), into a private PulseAudio null sink, and the first sound is
timed from launch to the first non-silent sample recorded (the bench's own
`first_sound`). Prints one line per case and the median of `--runs`.

    .venv/bin/python tests/bench/bench_play.py [--runs 3] [--sizes 20m,2h] [--starts both]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (the bench's scripts and measurement)


def bell_first(text: str) -> str:
    """The same script with a bell as its first step."""
    return text.replace("    steps:\n", "    steps:\n      - sound: soft-bell\n", 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="20m,2h")
    parser.add_argument("--openings", default="speech,bell")
    parser.add_argument(
        "--starts", default="split",
        help="split (play's normal start: a child reads the script while the parent loads "
        "the audio side), one (PRTVOICE_ONE_PROCESS=1), or both, interleaved run by run",
    )  # fmt: skip
    parser.add_argument(
        "--bytecode",
        action="store_true",
        help="compile prtvoice's bytecode first (into a private PYTHONPYCACHEPREFIX), as an "
        "installed package has it; without, an editable install under "
        "PYTHONDONTWRITEBYTECODE compiles every module on every launch",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prtvoice-bench-play-"))
    base_env = bench.user_env(work)
    if args.bytecode:
        bench.installed_bytecode(base_env, work)  # with one untimed launch of play
    starts = ["split", "one"] if args.starts == "both" else [args.starts]
    try:
        for size in args.sizes.split(","):
            text = bench.script_yaml(bench.make_lines(bench.SESSIONS[size]), title=f"Bench {size}")
            for opening in args.openings.split(","):
                script = work / f"{size}-{opening}.yaml"
                script.write_text(text if opening == "speech" else bell_first(text), "utf-8")
                cold: dict[str, list[float]] = {start: [] for start in starts}
                warm: dict[str, list[float]] = {start: [] for start in starts}
                for run in range(args.runs):
                    for start in starts:  # interleaved: the machine's drift hits both alike
                        env = bench.with_cache(base_env, work / f"cache-{size}-{opening}-{start}-{run}")
                        env["PRTVOICE_ONE_PROCESS"] = "1" if start == "one" else "0"
                        cold[start].append(bench.first_sound(script, env))
                        warm[start].append(bench.first_sound(script, env))
                for start in starts:
                    label = "" if len(starts) == 1 else f" {start:<5}"
                    print(
                        f"{size:>3} {opening:<6}{label} cold {statistics.median(cold[start]):.3f} s "
                        f"({' '.join(f'{x:.2f}' for x in cold[start])})  "
                        f"warm {statistics.median(warm[start]):.3f} s "
                        f"({' '.join(f'{x:.2f}' for x in warm[start])})",
                        flush=True,
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
