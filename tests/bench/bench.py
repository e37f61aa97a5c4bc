"""prtvoice against the naive pipeline, side by side in one run (not a test).

    .venv/bin/python tests/bench/bench.py            # everything (~12 min on 2 cores)
    .venv/bin/python tests/bench/bench.py --quick    # 20-minute session only

The naive pipeline is what people use today: one pyttsx3 clip per line
(`save_to_file` + `runAndWait` into a WAV), glued with pydub's `+=` (clip,
then `AudioSegment.silent(pause)`), exported once through ffmpeg as MP3.
prtvoice does the same content (same lines, same pauses, same 84 words a
minute) and more: gated loudness normalisation with a true-peak ceiling,
ID3 chapters per section, tags, and LRC + SRT transcripts.

Scripts are generated: distinct lines made from the bundled library's
sentences (so a cold cache is really cold), a pause after each line, a
section (chapter) every ten lines, no ambience (the naive pipeline has
none). Every measured thing runs in its own fresh subprocess, so its peak
resident memory (the process's own ru_maxrss; ffmpeg and the speech workers
are separate processes, reported apart) and its wall time are its own.
Cold runs get an empty cache (no clips, no remembered gain); warm
runs re-export the same script file edited in place, ONE line changed,
against the cache of the cold run (its clips, and the gain it settled on,
which lets the re-export encode in one pass when it still meets the
target: prtvoice/gain_memory.py). "encoder alone"
is ffmpeg encoding the same audio (raw float32 from a file) with the same
settings, in one ffmpeg; an MP3 export of two minutes or more encodes its
halves in two at once (prtvoice/halves.py), so it can beat it. `play` is launched into a
private PulseAudio null sink (tests/pulse.py) and its first sound is the
first non-silent sample recorded from the sink's monitor, timed from
process start by the arrival time of the recorded chunk.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
ROOT = TESTS.parent
PY = sys.executable
RATE = 0.62  # the library's calm rate: round(135 * 0.62) = 84 words a minute
WPM = 84
PAUSE_SECONDS = 5.0
LINES_PER_SECTION = 10
SESSIONS = {"20m": 20 * 60, "2h": 120 * 60}


# ---------------------------------------------------------------------------
# Scripts


def _sentences() -> list[str]:
    """Plain sentences from the bundled library (no placeholders, no inline pauses)."""
    import yaml

    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "say":
                    text = value.get("text") if isinstance(value, dict) else value
                    if isinstance(text, str):
                        found.extend(_split(text))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in sorted((ROOT / "scripts").rglob("*.yaml")):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    unique = sorted({s for s in found if 3 <= len(s.split()) <= 18})
    return unique


def _split(text: str) -> list[str]:
    if "{" in text or "[" in text:
        return []
    parts = re.split(r"(?<=[.?!])\s+", " ".join(text.split()))
    return [p for p in parts if p and p[-1] in ".?!"]


def make_lines(seconds: float) -> list[str]:
    """Distinct lines whose speech plus pauses last about `seconds`."""
    pool = _sentences()
    lines: list[str] = []
    seen: set[str] = set()
    total = 0.0
    i = 0
    while total < seconds:
        if i < len(pool):
            line = pool[i]
        else:  # pair sentences once single ones run out: still all distinct
            line = pool[i % len(pool)] + " " + pool[(i * 7 + i // len(pool)) % len(pool)]
        i += 1
        if line in seen:
            continue
        seen.add(line)
        lines.append(line)
        # eSpeak at 84 wpm, plus a little margin at each end, then the pause.
        total += len(line.split()) * 60 / WPM + 0.3 + PAUSE_SECONDS
    return lines


def script_yaml(lines: list[str], *, title: str) -> str:
    out = [
        "prtvoice: 1",
        f"title: {title}",
        "kind: custom",
        "summary: Benchmark session.",
        "voice:",
        f"  rate: {RATE}",
        "sections:",
    ]
    for index, line in enumerate(lines):
        if index % LINES_PER_SECTION == 0:
            out += [f"  - title: Part {index // LINES_PER_SECTION + 1}", "    steps:"]
        out.append(f"      - say: {json.dumps(line)}")
        out.append(f"      - pause: {PAUSE_SECONDS:g}s")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Children (each runs in its own process and prints one JSON line)


def child_prtvoice(script: str, out: str) -> dict:
    """What `prtvoice export SCRIPT -o OUT -t lrc,srt` does, with each stage timed."""
    began = time.perf_counter()
    from prtvoice import blas

    blas.one_thread()  # as the `prtvoice` command does first
    from prtvoice.config import load_config
    from prtvoice.tts.engine import start_engine

    engine = start_engine(load_config())  # before the imports and the script, as the CLI does
    from prtvoice.ffmpeg import encoders_soon

    encoders_known = encoders_soon()  # ffmpeg's encoders, asked meanwhile (as the CLI does)
    from prtvoice import export as exporting
    from prtvoice import session
    from prtvoice.encode import format_for

    fmt = format_for("mp3")
    from prtvoice.encode import choose_encoder
    from prtvoice.ffmpeg import find_ffmpeg

    encoders_known()
    choose_encoder(fmt, find_ffmpeg())  # where the command line checks it
    kinds = ("lrc", "srt")
    target = Path(out)
    exporting.check_targets(exporting.target_paths(target, kinds), force=True)
    options = session.options_from(load_config(), format=fmt.name).for_export()
    script_ = session.load(script)
    voices = session.voice_bank(load_config(), options, engine=engine)
    sounds = session.sound_bank(options)
    timer = {"synth": 0.0, "render": 0.0}
    prefetch = voices.prefetch

    def timed_prefetch(requests) -> None:
        t = time.perf_counter()
        prefetch(requests)
        timer["synth"] += time.perf_counter() - t

    voices.prefetch = timed_prefetch  # the bank's own method, timed
    t_plan = time.perf_counter()
    plan = session.make_plan(script_, voices=voices, sounds=sounds, options=options)
    plan_seconds = time.perf_counter() - t_plan - timer["synth"]
    source = exporting.blocks_from_plan(plan, voices=voices, sounds=sounds, options=options)

    def timed(stream):
        stream = iter(stream)
        while True:
            t = time.perf_counter()
            try:
                block = next(stream)
            except StopIteration:
                timer["render"] += time.perf_counter() - t
                return
            timer["render"] += time.perf_counter() - t
            yield block

    class Blocks:  # the export's own block source (it can seek), its rendering timed
        def __call__(self):
            return timed(source())

        def span(self, start, end):
            return timed(source.span(start, end))

    blocks = Blocks()

    t_export = time.perf_counter()
    try:
        result = exporting.export_plan(
            plan, blocks=blocks, target=target, options=options, force=True, transcripts=kinds,
            memory=session.gain_memory(),  # as `prtvoice export` does (ScriptPreparer)
        )
    finally:
        voices.close()
    export_seconds = time.perf_counter() - t_export
    return {
        "audio_seconds": plan.seconds,
        "sample_rate": plan.sample_rate,
        "setup": t_plan - began,
        "plan": plan_seconds,
        "synth": timer["synth"],
        "render": timer["render"],
        "encode": export_seconds - timer["render"],
        "lufs": result.loudness_lufs,
        "true_peak_db": result.true_peak_db,
        "limited": result.limiter_pass,  # the limiter's loss fitted on re-rendered spans
        "fit_frames": result.fit_frames,
        "measure_seconds": result.measure_seconds,  # pass 1 (+ the limiter fit), rendering in
        "encode_seconds": result.encode_seconds,  # the encoding pass, tags, transcripts
        "passes": result.passes,  # 1: the gain its last export left (GainMemory) landed
        "encoders": result.encoders,  # 2: the MP3 encoded in halves on two cores
    }


def child_naive(script: str, out: str) -> dict:
    """The naive pipeline on the same lines and pauses."""
    import yaml

    began = time.perf_counter()
    import pyttsx3
    from pydub import AudioSegment

    data = yaml.safe_load(Path(script).read_text(encoding="utf-8"))
    engine = pyttsx3.init()
    engine.setProperty("rate", WPM)
    session = AudioSegment.empty()
    clips = 0
    with tempfile.TemporaryDirectory(prefix="naive-") as folder:
        for section in data["sections"]:
            for step in section["steps"]:
                if "say" in step:
                    path = os.path.join(folder, f"{clips}.wav")
                    clips += 1
                    engine.save_to_file(step["say"], path)
                    engine.runAndWait()
                    # pyttsx3 2.99's runAndWait can return before eSpeak wrote the
                    # file: run the loop again until it is there (as users learn to).
                    while not os.path.exists(path):
                        engine.runAndWait()
                    clip = AudioSegment.from_wav(path)
                    session += clip
                else:
                    ms = round(float(str(step["pause"]).rstrip("s")) * 1000)
                    # At the clips' rate (pydub's default 11025 Hz would also resample).
                    session += AudioSegment.silent(ms, frame_rate=session.frame_rate or 22050)
        built = time.perf_counter()
        session.export(out, format="mp3", bitrate="96k")
    done = time.perf_counter()
    return {
        "audio_seconds": len(session) / 1000,
        "synth_and_concat": built - began,
        "encode": done - built,
    }


def run_child(kind: str, script: Path, out: Path, env: dict[str, str]) -> dict:
    """One measured run in a fresh process: its JSON, wall time and peak RSS."""
    began = time.perf_counter()
    done = subprocess.run(
        [PY, __file__, "--child", kind, str(script), str(out)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["total"] = wall
    return result


def _child_main(kind: str, script: str, out: str) -> None:
    result = child_prtvoice(script, out) if kind == "prtvoice" else child_naive(script, out)
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["children_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(result))
    if kind == "prtvoice":  # leave as `prtvoice export` does (prtvoice.cli.leave_lightly):
        gc.freeze()  # the exit counts in the total


# ---------------------------------------------------------------------------
# Other measurements


def encoder_alone(mp3: Path, work: Path, *, rate: int) -> float:
    """ffmpeg's own time to encode `mp3`'s audio from raw float32 with export's settings.

    `rate` is the export's own sample rate, so the encoder gets the same samples.
    """
    from prtvoice.encode import FORMATS, encoder_command
    from prtvoice.ffmpeg import find_ffmpeg

    ffmpeg = find_ffmpeg()
    raw = work / "encoder-alone.f32"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-i", str(mp3), "-f", "f32le", "-ac", "1", "-ar", str(rate),
         str(raw)], check=True,
    )  # fmt: skip
    command = encoder_command(
        ffmpeg=ffmpeg, fmt=FORMATS["mp3"], sample_rate=rate, out=work / "encoder-alone.mp3"
    )
    command[command.index("pipe:0")] = str(raw)
    began = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - began
    raw.unlink()
    return seconds


def first_sound(script: Path, env: dict[str, str]) -> float:
    """Seconds from launching `prtvoice play SCRIPT` to its first sound in a null sink."""
    import numpy as np

    sys.path.insert(0, str(TESTS))
    from pulse import PulseSink

    sink = PulseSink().start()
    try:
        recorder = sink.record()
        before = recorder.samples_so_far()
        began = time.perf_counter()
        play = subprocess.Popen(
            [PY, "-m", "prtvoice", "play", str(script)],
            env={**env, **sink.env}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        found: float | None = None
        deadline = began + 60
        while found is None and time.perf_counter() < deadline and play.poll() is None:
            time.sleep(0.05)  # polling for the recorder; the time comes from chunk arrivals
            chunks = list(recorder._chunks)
            ends = list(recorder._ends)
            data = b"".join(chunks)
            samples = np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4")
            loud = np.flatnonzero(np.abs(samples[before:]) > 1e-4)
            if len(loud):
                index = before + int(loud[0])
                found = next(when for when, upto in ends if upto > index) - began
        play.terminate()  # SIGTERM: the player fades out and remembers its place
        try:
            play.wait(timeout=10)
        except subprocess.TimeoutExpired:
            play.kill()
            play.wait()
        recorder.stop(settle=0.1)
        if found is None:
            raise SystemExit(f"play made no sound:\n{play.stderr.read().decode()[-2000:]}")
        return found
    finally:
        sink.stop()


def startup(argv: list[str], env: dict[str, str], runs: int = 7) -> float:
    """Median wall time of a short command (fresh process each time)."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


# ---------------------------------------------------------------------------
# The table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 20-minute session only")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument(
        "--repeats", type=int, default=3,
        help="runs of each pairing, interleaved, medians reported (default 3): warm "
        "re-export and encoder alone at every size, cold and naive at 20 min (the naive "
        "2 h run takes ~3 min, so it runs once); also play's first sound",
    )  # fmt: skip
    args = parser.parse_args()
    sizes = ["20m"] if args.quick else ["20m", "2h"]
    repeats = max(1, args.repeats)
    work = Path(tempfile.mkdtemp(prefix="prtvoice-bench-"))
    base_env = user_env(work)
    installed_bytecode(base_env, work)
    figures: dict[str, dict] = {}
    try:
        for size in sizes:
            lines = make_lines(SESSIONS[size])
            script = work / f"bench-{size}.yaml"
            script.write_text(script_yaml(lines, title=f"Bench {size}"), encoding="utf-8")
            runs: dict[str, list] = {"naive": [], "cold": [], "warm": [], "encoder": []}
            pairs = repeats if size == "20m" else 1
            for run in range(pairs):  # interleaved: the machine's drift hits both alike
                env = with_cache(base_env, work / f"cache-{size}-{run}")
                log(f"{size}: {len(lines)} lines; naive pipeline ({run + 1}/{pairs}) ...")
                runs["naive"].append(run_child("naive", script, work / f"naive-{size}.mp3", env))
                log(f"{size}: prtvoice, cold cache ({run + 1}/{pairs}) ...")
                runs["cold"].append(run_child("prtvoice", script, work / f"cold-{size}.mp3", env))
            env = with_cache(base_env, work / f"cache-{size}-0")
            for run in range(repeats):
                log(f"{size}: prtvoice, warm cache, one line changed ({run + 1}/{repeats}) ...")
                # Edited in place, as a therapist does: the same script file, one line new
                # (another line each run, so each run has one clip to make).
                changed = list(lines)
                changed[len(changed) // 2 + run] = f"This one line was changed, time {run + 1}."
                script.write_text(script_yaml(changed, title=f"Bench {size}"), encoding="utf-8")
                warm = run_child("prtvoice", script, work / f"warm-{size}.mp3", env)
                runs["warm"].append(warm)
                rate = warm.get("sample_rate", 44100)
                runs["encoder"].append(encoder_alone(work / f"warm-{size}.mp3", work, rate=rate))
            script.write_text(script_yaml(lines, title=f"Bench {size}"), encoding="utf-8")
            plays = []
            for run in range(repeats):
                log(f"{size}: play, cold cache ({run + 1}/{repeats}) ...")
                cache = work / f"play-cache-{size}-{run}"
                plays.append(first_sound(script, with_cache(base_env, cache)))
            figures[size] = {
                "lines": len(lines),
                "naive": median_run(runs["naive"]), "cold": median_run(runs["cold"]),
                "warm": median_run(runs["warm"]),
                "encoder_alone": statistics.median(runs["encoder"]),
                "totals": {
                    "naive": [r["total"] for r in runs["naive"]],
                    "cold": [r["total"] for r in runs["cold"]],
                    "warm": [r["total"] for r in runs["warm"]],
                    "encoder_alone": runs["encoder"],
                },
                "play_first_sound": statistics.median(plays),
                "play_first_sounds": plays,
            }  # fmt: skip
            if args.json:  # kept as it comes: a later failure loses nothing
                args.json.write_text(json.dumps(figures, indent=2))
        cli = [str(Path(PY).with_name("prtvoice"))]
        figures["startup"] = {
            "help": startup([*cli, "--help"], base_env),
            "check": startup([*cli, "check", str(ROOT / "scripts" / "grounding.yaml")], base_env),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(table(figures, sizes))


def median_run(runs: list[dict]) -> dict:
    """The run whose total is the median (the upper one of an even count)."""
    return sorted(runs, key=lambda r: r["total"])[len(runs) // 2]


def installed_bytecode(env: dict[str, str], work: Path) -> None:
    """Run prtvoice with compiled bytecode, as an installed package has it.

    An editable install under PYTHONDONTWRITEBYTECODE (this repository's CI and
    development machines) compiles every module on every launch (~0.1 s more);
    pip compiles on install. The bytecode goes into a private prefix.
    """
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "prtvoice")], env=env, check=True)
    # The libraries' modules compile on first import: one untimed run of each kind.
    warm_up = work / "warm-up.yaml"
    warm_up.write_text(script_yaml(["One line."], title="Warm-up"), "utf-8")
    cache = with_cache(env, work / "warm-up-cache")
    run_child("prtvoice", warm_up, work / "warm-up.mp3", cache)
    run_child("naive", warm_up, work / "warm-up-naive.mp3", env)
    # `play` imports what an export does not (sounddevice, the player, their parts of
    # the standard library): compiled now, or the first timed play compiles them.
    first_sound(warm_up, with_cache(env, work / "warm-up-play-cache"))


def user_env(work: Path) -> dict[str, str]:
    """The environment of a user with no settings: prtvoice finds its folders as it does
    for anyone (the XDG base directories, here under `work`), not through the
    PRTVOICE_* overrides, which would skip that lookup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRTVOICE_")}
    for variable, folder in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                             ("XDG_STATE_HOME", "state")):  # fmt: skip
        env[variable] = str(work / folder)
    return env


def with_cache(env: dict[str, str], folder: Path) -> dict[str, str]:
    """`env` with its clip cache (and remembered gains) in `folder`."""
    return {**env, "XDG_CACHE_HOME": str(folder)}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def table(f: dict, sizes: list[str]) -> str:
    rows = [
        "| session | pipeline | plan | synthesis | render | loudness + encode | total "
        "| x real time | peak RSS | speed vs naive |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in sizes:
        s = f[size]
        naive, minutes = s["naive"], s["cold"]["audio_seconds"] / 60
        label = f"{size} ({minutes:.1f} min, {s['lines']} lines)"
        rows.append(
            f"| {label} | naive (pyttsx3 + pydub `+=`) | – | {naive['synth_and_concat']:.2f} s "
            f"(with concat) | – | {naive['encode']:.2f} s | **{naive['total']:.2f} s** "
            f"| {naive['audio_seconds'] / naive['total']:.0f}x | {naive['rss_mb']:.0f} MB | 1.0x |"
        )
        for name, run in (
            ("prtvoice, cold cache", s["cold"]),
            ("prtvoice, warm, 1 line changed", s["warm"]),
        ):
            rows.append(
                f"| {label} | {name} | {run['plan']:.2f} s | {run['synth']:.2f} s "
                f"| {run['render']:.2f} s | {run['encode']:.2f} s | **{run['total']:.2f} s** "
                f"| {run['audio_seconds'] / run['total']:.0f}x | {run['rss_mb']:.0f} MB "
                f"| {naive['total'] / run['total']:.1f}x |"
            )  # fmt: skip
        rows.append(
            f"| {label} | ffmpeg encoder alone (same audio) | | | | {s['encoder_alone']:.2f} s "
            f"| {s['encoder_alone']:.2f} s | | | |"
        )
    lines = ["\n".join(rows), ""]
    for size in sizes:
        s = f[size]
        totals = s.get("totals", {})
        if len(totals.get("warm", [])) > 1:
            spread = "; ".join(
                f"{name} " + ", ".join(f"{t:.2f}" for t in totals[name])
                for name in ("naive", "cold", "warm", "encoder_alone")
                if totals.get(name)
            )
            lines.append(f"- {size}, every run (s; the table has medians): {spread}")
        floor = s["cold"]["synth"] + s["encoder_alone"] / 2
        lines.append(
            f"- {size} cold floor, synthesis + half the encoder alone (the encoders cannot start "
            f"before the gain is known, which needs every clip; two of them share the halves): "
            f"{floor:.2f} s = naive / {s['naive']['total'] / floor:.1f}"
        )
        every = ", ".join(f"{t:.2f}" for t in s.get("play_first_sounds", []))
        lines.append(f"- `play` {size}, cold cache: first sound {s['play_first_sound']:.2f} s "
                     f"after launch (median; runs {every})")  # fmt: skip
        lines.append(f"- warm re-export {size} / encoder alone: "
                     f"{s['warm']['total'] / s['encoder_alone']:.2f}x "
                     f"(passes over the session: cold {s['cold'].get('passes', '?')}, "
                     f"warm {s['warm'].get('passes', '?')}; encoders at once: cold "
                     f"{s['cold'].get('encoders', '?')}, warm {s['warm'].get('encoders', '?')})")  # fmt: skip
    if "2h" in sizes:
        ratio = f["2h"]["cold"]["total"] / f["20m"]["cold"]["total"]
        length = f["2h"]["cold"]["audio_seconds"] / f["20m"]["cold"]["audio_seconds"]
        lines.append(f"- 2 h / 20 min export time: {ratio:.2f}x for {length:.2f}x the audio")
    st = f["startup"]
    lines.append(f"- `prtvoice --help`: {st['help']:.2f} s; `prtvoice check scripts/grounding.yaml`: "
                 f"{st['check']:.2f} s (median of 7)")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child_main(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
