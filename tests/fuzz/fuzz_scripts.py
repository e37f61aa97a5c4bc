"""Mutation fuzzer for the loader and the planner.

Feeds broken, truncated, mutated and random YAML documents, made from the
bundled library (scripts/) and the golden scripts (tests/data/scripts/), to
`load_script` and then `plan_script` (FakeSpeech for speed, the real
SoundBank so sound files really decode). Every document must end in a
ScriptError whose every problem has a file, line >= 1 and col >= 1, or in a
valid plan; anything else, or taking over a second, is a failure. Failures
are saved as reproducer files.

Run it on its own for long runs:

    python -m tests.fuzz.fuzz_scripts --seconds 600 [--seed N] [--crashes DIR]

It prints the figures: documents tried, outcomes, failures, slowest case.
The test suite runs a fast slice of it (tests/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fakes import FakeSpeech  # noqa: E402

from prtvoice.errors import ScriptError  # noqa: E402
from prtvoice.names import MAX_SESSION_SECONDS  # noqa: E402
from prtvoice.options import Options  # noqa: E402
from prtvoice.plan import MAX_EVENTS, Plan, plan_script  # noqa: E402
from prtvoice.script import load_script  # noqa: E402
from prtvoice.sounds import SoundBank  # noqa: E402

try:  # run as `python -m tests.fuzz.fuzz_scripts` or imported as `fuzz.fuzz_scripts`
    from .mutations import mutate, random_document
except ImportError:  # pragma: no cover - run as a plain file
    from mutations import mutate, random_document  # type: ignore[no-redef]

# CPU seconds one document may take, load and plan together. CPU time, not wall
# time: on a busy machine (other test runs, two cores) wall time can triple.
TIME_LIMIT = 1.0
HANG_LIMIT = 10.0  # a watchdog stops a document this slow and records a hang
PWNED = Path("/tmp/prtvoice-pwned")  # what the injected commands would create


def corpus_files() -> list[Path]:
    """The seed documents: the bundled library and every golden script."""
    files = sorted((ROOT / "scripts").glob("**/*.yaml"))
    files += sorted((TESTS / "data" / "scripts").glob("**/*.yaml"))
    return files


def _wav(path: Path, frames: int, *, sample_rate: int = 22050) -> None:
    import wave

    import numpy as np

    tone = (0.3 * np.sin(np.arange(frames) * 2 * np.pi * 440 / sample_rate) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(tone.tobytes())


@dataclass
class Sandbox:
    """A script folder holding the corpus, traps around it, and a sound library."""

    folder: Path
    audio: Path
    target: Path  # where each fuzzed document is written

    @classmethod
    def make(cls, root: Path) -> Sandbox:
        folder, audio, outside = root / "scripts", root / "audio", root / "outside"
        for source in (ROOT / "scripts", TESTS / "data" / "scripts"):
            shutil.copytree(source, folder, dirs_exist_ok=True)
        audio.mkdir()
        outside.mkdir()
        _wav(audio / "library-tone.wav", 2205)
        _wav(folder / "tone.wav", 4410)
        (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt junk" + os.urandom(64))
        (folder / "empty.wav").write_bytes(b"")
        # A WAV header that claims gigabytes of data.
        (folder / "huge-header.wav").write_bytes(
            b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVEfmt " + struct.pack(
                "<IHHIIHH", 16, 1, 1, 44100, 88200, 2, 16) + b"data" + struct.pack(
                "<I", 0xFFFFFFC0) + b"\x00" * 64)  # fmt: skip
        (outside / "secret.yaml").write_text("sections: [{title: S, steps: [{say: secret}]}]\n")
        _wav(outside / "secret.wav", 100)
        (folder / "out-link.yaml").symlink_to(outside / "secret.yaml")
        (folder / "out-link.wav").symlink_to(outside / "secret.wav")
        (folder / "dev-link.wav").symlink_to("/dev/zero")
        (folder / "folder.yaml").mkdir()
        os.mkfifo(folder / "pipe.yaml")
        return cls(folder=folder, audio=audio, target=folder / "fuzz.yaml")


@dataclass
class Outcome:
    kind: str  # "error" (a ScriptError), "plan" (a valid plan) or "failure"
    seconds: float  # CPU time of this process
    detail: str = ""
    wall: float = 0.0


class _Hang(BaseException):
    """Raised by the watchdog; a BaseException so no `except Exception` swallows it."""


def check_error(error: ScriptError) -> str | None:
    """Why this ScriptError breaks the contract, or None when it is fine."""
    if not error.problems:
        return "ScriptError without problems"
    for problem in error.problems:
        if not isinstance(problem.file, Path) or not str(problem.file):
            return f"problem without a file: {problem!r}"
        if not (isinstance(problem.line, int) and problem.line >= 1):
            return f"line {problem.line!r} < 1: {problem}"
        if not (isinstance(problem.col, int) and problem.col >= 1):
            return f"col {problem.col!r} < 1: {problem}"
        if not isinstance(problem.message, str) or not problem.message.strip():
            return f"empty message: {problem!r}"
    str(error)  # the CLI prints it
    return None


def check_plan(plan: Plan) -> str | None:
    """Why this plan is not valid, or None when it is."""
    sr = plan.sample_rate
    position = 0
    for event in plan.events:
        if event.start != position:
            return f"event at {event.start} should start at {position}: {event}"
        if event.length <= 0:
            return f"event of length {event.length}: {event}"
        position = event.end
    if plan.frames != position:
        return f"plan lasts {plan.frames} frames but its events end at {position}"
    if plan.frames > round(MAX_SESSION_SECONDS * sr):
        return f"plan lasts {plan.frames / sr:.0f} s, over the session limit"
    if len(plan.events) > MAX_EVENTS:
        return f"{len(plan.events)} events, over the limit"
    for section in plan.sections:
        if not 0 <= section.start <= section.end <= plan.frames:
            return f"section out of the plan: {section}"
    json.dumps(plan.to_json())  # `outline --json` prints it
    return None


class Fuzzer:
    """Runs documents through load + plan and keeps the figures."""

    def __init__(self, sandbox: Sandbox, *, crashes: Path | None = None):
        self.sandbox = sandbox
        self.options = Options()
        self.sounds = SoundBank(sample_rate=self.options.sample_rate)
        self.crashes = crashes
        self.outcomes: Counter[str] = Counter()
        self.failures: list[tuple[bytes, Outcome, list[str]]] = []
        self.failure_kinds: Counter[str] = Counter()
        self.slowest: tuple[float, list[str]] = (0.0, [])
        self.slowest_wall = 0.0
        self.tried = 0

    def run_one(self, doc: bytes) -> Outcome:
        self.sandbox.target.write_bytes(doc)
        started, started_cpu = time.perf_counter(), time.process_time()
        watchdog = _arm_watchdog()
        try:
            script = load_script(self.sandbox.target, audio_dirs=[self.sandbox.audio])
            plan = plan_script(
                script,
                options=self.options,
                speech=FakeSpeech(self.options.sample_rate),
                sounds=self.sounds,
            )
            problem = check_plan(plan)
            outcome = Outcome("plan" if problem is None else "failure", 0.0, problem or "")
        except ScriptError as error:
            problem = check_error(error)
            outcome = Outcome("error" if problem is None else "failure", 0.0, problem or "")
        except _Hang:
            outcome = Outcome("failure", 0.0, f"hang: over {HANG_LIMIT:g} s")
        except Exception as error:
            tail = "".join(traceback.format_exception(error)[-4:])
            outcome = Outcome("failure", 0.0, f"{type(error).__name__}: {error}\n{tail}")
        finally:
            _disarm_watchdog(watchdog)
        outcome.seconds = time.process_time() - started_cpu
        outcome.wall = time.perf_counter() - started
        return outcome

    def feed(self, doc: bytes, applied: list[str]) -> Outcome:
        outcome = self.run_one(doc)
        if outcome.kind != "failure" and outcome.seconds > TIME_LIMIT:
            again = self.run_one(doc)  # a busy machine, or really slow? ask twice
            if again.seconds > TIME_LIMIT:
                outcome = Outcome(
                    "failure", again.seconds, f"slow: {again.seconds:.2f} s of CPU", again.wall
                )
        self.tried += 1
        self.outcomes[outcome.kind] += 1
        if outcome.seconds > self.slowest[0]:
            self.slowest = (outcome.seconds, applied)
        self.slowest_wall = max(self.slowest_wall, outcome.wall)
        if outcome.kind == "failure":
            self.failures.append((doc, outcome, applied))
            self.failure_kinds[outcome.detail.splitlines()[0][:100]] += 1
            self._save(doc, outcome, applied)
        return outcome

    def _save(self, doc: bytes, outcome: Outcome, applied: list[str]) -> None:
        if self.crashes is None:
            return
        self.crashes.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(doc).hexdigest()[:16]
        (self.crashes / f"{name}.yaml").write_bytes(doc)
        (self.crashes / f"{name}.txt").write_text(
            f"mutations: {' '.join(applied)}\nseconds: {outcome.seconds:.3f}\n{outcome.detail}\n"
        )

    def figures(self) -> dict:
        return {
            "documents": self.tried,
            "script_errors": self.outcomes["error"],
            "valid_plans": self.outcomes["plan"],
            "failures": self.outcomes["failure"],
            "failure_kinds": dict(self.failure_kinds),
            "slowest_cpu_seconds": round(self.slowest[0], 3),
            "slowest_wall_seconds": round(self.slowest_wall, 3),
            "slowest_mutations": self.slowest[1],
        }


def _arm_watchdog():
    if HANG_LIMIT <= 0 or not hasattr(signal, "setitimer"):
        return None
    try:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
    except ValueError:  # not the main thread: no watchdog, the time check still counts
        return None
    signal.setitimer(signal.ITIMER_REAL, HANG_LIMIT)
    return previous


def _disarm_watchdog(previous) -> None:
    if previous is None:
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def _on_alarm(signum, frame):
    raise _Hang


def documents(rng: random.Random, corpus: list[bytes]):
    """Endless (document, mutations applied): mostly mutants, some pristine and random."""
    while True:
        roll = rng.random()
        if roll < 0.02:
            yield rng.choice(corpus), ["pristine"]
        elif roll < 0.10:
            yield random_document(rng), ["random"]
        else:
            doc, applied = mutate(rng.choice(corpus), rng, corpus=corpus)
            yield doc, applied


def fuzz(
    *,
    seconds: float | None = None,
    count: int | None = None,
    seed: int = 0,
    workdir: Path | None = None,
    crashes: Path | None = None,
    progress=None,
) -> Fuzzer:
    """Fuzz until `seconds` pass or `count` documents are tried; returns the Fuzzer."""
    corpus = [path.read_bytes() for path in corpus_files()]
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="prtvoice-fuzz-", dir=workdir) as temp:
        fuzzer = Fuzzer(Sandbox.make(Path(temp)), crashes=crashes)
        started = time.monotonic()
        last_report = started
        for doc, applied in documents(rng, corpus):
            if count is not None and fuzzer.tried >= count:
                break
            if seconds is not None and time.monotonic() - started >= seconds:
                break
            fuzzer.feed(doc, applied)
            if progress and time.monotonic() - last_report >= 30:
                last_report = time.monotonic()
                progress(fuzzer)
    if PWNED.exists():
        fuzzer.failures.append((b"", Outcome("failure", 0, f"{PWNED} was created"), []))
        fuzzer.outcomes["failure"] += 1
    return fuzzer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run")
    parser.add_argument("--count", type=int, default=None, help="stop after this many documents")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--crashes", type=Path, default=None, help="save failing documents here")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print(
        f"fuzzing loader + planner, seed {seed}, {len(corpus_files())} seed documents", flush=True
    )

    def progress(f: Fuzzer) -> None:
        print(f"  {f.tried} documents, {f.outcomes['failure']} failures", flush=True)

    started = time.monotonic()
    fuzzer = fuzz(seconds=args.seconds, count=args.count, seed=seed, crashes=args.crashes,
                  progress=progress)  # fmt: skip
    figures = fuzzer.figures()
    figures["seed"] = seed
    figures["elapsed_seconds"] = round(time.monotonic() - started, 1)
    figures["documents_per_second"] = round(figures["documents"] / figures["elapsed_seconds"], 1)
    print(json.dumps(figures, indent=2))
    for doc, outcome, applied in fuzzer.failures[:5]:
        print(f"\n--- failure ({' '.join(applied)}): {outcome.detail}\n{doc[:300]!r}")
    return 1 if fuzzer.failures else 0


if __name__ == "__main__":
    sys.exit(main())
