"""Long sessions stream: memory stays flat from 10 minutes to hours.

Each length runs in a fresh process, so its peak resident memory
(ru_maxrss) is its own. Speech is FakeSpeech (synthesis is the voice bank's
cost, paid before rendering and cached); sounds and the ambience bed are the
real SoundBank's; the stream goes through the export's loudness meter, as
pass 1 of an export does.

The one-off full check (a real 4-hour export to Opus, with time and peak
memory) is not part of the suite:

    /tmp/dev/bin/python tests/test_long_sessions.py export 235
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from fakes import FakeSpeech
from prtvoice import export as exporting
from prtvoice.options import Options
from prtvoice.plan import plan_script
from prtvoice.script import (Ambience, Breathe, Location, Pause, Say, Script, Section, Sound,
                             SoundRef, VoiceSettings)
from prtvoice.sounds import SoundBank

minutes, mode = float(sys.argv[1]), sys.argv[2]
here, voice = Location(Path("long.yaml"), 1, 1), VoiceSettings()
cycle = [  # about 75 s: one short text, so synthesis would be cheap with a real voice too
    Say("Let your attention rest on the breath.", voice, here),
    Pause(20, False, here),
    Breathe(4, 2, 6, 0, 4, "both", voice, here),
    Sound(SoundRef("soft-bell"), here),
]
rounds = max(1, round(minutes * 60 / 75))
per_section = 40
sections = tuple(
    Section(f"Part {{i + 1}}", tuple(cycle * min(per_section, rounds - i * per_section)), here)
    for i in range(-(-rounds // per_section))
)
script = Script(path=Path("long.yaml"), id="long", title="Long", kind="custom", summary="",
                language="en", duration=None, voice=voice,
                ambience=Ambience(SoundRef("soft-rain"), 10 ** (-30 / 20), here),
                variables={{}}, sections=sections, where=here)
options = Options(format="opus", bitrate="24k")
speech, sounds = FakeSpeech(options.sample_rate), SoundBank(sample_rate=options.sample_rate)
plan = plan_script(script, options=options, speech=speech, sounds=sounds)
blocks = exporting.blocks_from_plan(plan, voices=speech, sounds=sounds, options=options)
began = time.perf_counter()
if mode == "measure":
    result = exporting.measure(blocks, frames=plan.frames, sample_rate=plan.sample_rate)
else:
    result = exporting.export_plan(plan, blocks=blocks, target=Path(sys.argv[3]),
                                   options=options, force=True)
print(json.dumps({{
    "session_minutes": round(plan.seconds / 60, 1),
    "events": len(plan.events),
    "seconds": round(time.perf_counter() - began, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}}))
"""


def run_child(minutes: float, mode: str, *extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(tests=str(TESTS)), str(minutes), mode, *extra],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_peak_memory_is_flat_from_10_minutes_to_2_hours():
    short = run_child(10, "measure")
    long = run_child(120, "measure")
    assert 9 <= short["session_minutes"] <= 11 and 118 <= long["session_minutes"] <= 122
    # Twelve times the audio (about 1.2 GB as float32 if it were held): the same few blocks.
    assert long["peak_rss_mb"] <= short["peak_rss_mb"] + 40, (short, long)


def main() -> None:
    """`export MINUTES`: a real export to Opus in a child, with its time and peak memory."""
    import tempfile

    minutes = float(sys.argv[2]) if len(sys.argv) > 2 else 235  # just under the 4-h limit
    with tempfile.TemporaryDirectory() as folder:
        target = str(Path(folder) / "long.opus")
        for length in (10, minutes):
            figures = run_child(length, "export", target)
            figures["file_mb"] = round(Path(target).stat().st_size / 1e6, 1)
            print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
