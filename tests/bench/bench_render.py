"""Render speed and peak memory for a short and a long session (not a test).

    /tmp/dev/bin/python tests/bench/bench_render.py

Each length runs in a fresh process, so its peak resident memory (ru_maxrss)
is its own. Speech is the fast fake from tests/fakes.py (real synthesis is
the voice bank's cost, paid before rendering and cached).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def measure(minutes: float, bed: str) -> dict:
    sys.path.insert(0, str(TESTS))
    from fakes import FakeSpeech

    from prtvoice.options import Options
    from prtvoice.plan import plan_script
    from prtvoice.render import render
    from prtvoice.script import (
        Ambience,
        Breathe,
        Location,
        Pause,
        Say,
        Script,
        Section,
        Sound,
        SoundRef,
        VoiceSettings,
    )
    from prtvoice.sounds import SoundBank

    here, voice = Location(Path("bench.yaml"), 1, 1), VoiceSettings()
    cycle = [
        Say("Let your attention rest on the breath, without changing it.", voice, here),
        Pause(20, False, here),
        Breathe(4, 2, 6, 0, 4, "both", voice, here),
        Sound(SoundRef("soft-bell"), here),
    ]  # about 75 s
    repeats = max(1, round(minutes * 60 / 75))
    script = Script(
        path=Path("bench.yaml"), id="bench", title="Bench", kind="custom", summary="",
        language="en", duration=None, voice=voice,
        ambience=Ambience(SoundRef(bed), 10 ** (-30 / 20), here) if bed != "off" else None,
        variables={}, sections=(Section("All", tuple(cycle * repeats), here),), where=here,
    )  # fmt: skip
    options = Options()
    speech, sounds = FakeSpeech(options.sample_rate), SoundBank(sample_rate=options.sample_rate)
    plan = plan_script(script, options=options, speech=speech, sounds=sounds)
    if script.ambience:
        sounds.bed(script.ambience.sound)  # made once per bank; not rendering's cost
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    frames = sum(len(b) for b in render(plan, voices=speech, sounds=sounds, options=options))
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "session_minutes": round(plan.seconds / 60, 1),
        "bed": bed,
        "render_seconds": round(seconds, 2),
        "x_realtime": round(plan.seconds / seconds),
        "peak_rss_mb": round(after / 1024, 1),
        "rss_growth_while_rendering_mb": round((after - before) / 1024, 1),
        "frames_ok": frames == plan.frames,
    }


def main() -> None:
    if len(sys.argv) == 3:
        print(json.dumps(measure(float(sys.argv[1]), sys.argv[2])))
        return
    for bed in ("soft-rain", "off"):
        for minutes in (10, 120):
            out = subprocess.run(
                [sys.executable, __file__, str(minutes), bed],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            print(out.strip())


if __name__ == "__main__":
    main()
