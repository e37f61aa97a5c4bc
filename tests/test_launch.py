"""`prtvoice.launch`: `play` starts in two processes (a child reads the script while
the parent loads the audio side), and still behaves as one command.

Playing itself goes through this path in every subprocess test of `play`
(tests/test_cli_play.py, tests/test_faults.py); these tests pin what the split
adds: the guess on the arguments, the hand-off, and failures and signals
while both processes run.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prtvoice import cli_play, launch
from prtvoice.config import Config
from prtvoice.errors import ExitStatus

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("args", "split"),
    [
        (["play", "grounding"], True),
        (["--traceback", "play", "x.yaml", "--minutes", "5"], True),
        (["play", "--help"], False),
        (["play", "-h"], False),
        (["play", "--list-devices"], False),
        (["export", "grounding"], False),
        (["check", "play"], False),
        ([], False),
        (["--version"], False),
    ],
)
def test_only_a_play_that_will_play_starts_split(args, split, monkeypatch):
    monkeypatch.delenv("PRTVOICE_ONE_PROCESS", raising=False)
    assert launch.splits(args) is split
    monkeypatch.setenv("PRTVOICE_ONE_PROCESS", "1")
    assert launch.splits(args) is False


@pytest.mark.parametrize("script", sorted((ROOT / "scripts").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_bundled_script_crosses_the_pipe_intact(script):
    # The child pickles what it prepared; anything unpicklable in a loaded
    # script would break `play` for it.
    request = cli_play.prepare(str(script), config=Config(), minutes=None, sets=None,
                               vars_file=None, from_section=None, only=None, device="2",
                               volume=0.5, ambience=None, resume=False)  # fmt: skip
    read_end, write_end = os.pipe()
    cli_play.hand_off_to(write_end)
    assert cli_play.hands_off()
    data = bytearray()

    import threading

    def drain() -> None:
        while chunk := os.read(read_end, 1 << 16):
            data.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    cli_play.hand_off(request)
    reader.join(10)
    os.close(read_end)
    assert not cli_play.hands_off()
    copy = pickle.loads(bytes(data))
    assert copy == request
    assert copy.device == 2 and copy.volume == 0.5


@pytest.mark.parametrize("settings", ["default", "command engine", "broken"])
def test_the_worker_started_before_the_fork_goes_to_the_configured_engine(
    tmp_path, monkeypatch, settings
):
    # Started first of all, before the configuration is read: the default engine
    # takes it over; another engine, or settings the child will report, stop it.
    config = tmp_path / "config.yaml"
    if settings == "command engine":
        config.write_text("engine: command\ncommand: [espeak-ng, -w, '{out}', '{text}']\n")
    elif settings == "broken":
        config.write_text("engine: [not, a, name]\n")
    monkeypatch.setenv("PRTVOICE_CONFIG", str(config))
    spawned = launch._spawn_worker()
    engine = launch._engine_if_configured(spawned)
    try:
        if settings == "default":
            assert engine._warm_worker is None or engine._warm_worker.process is spawned.process
            assert any(v.id == "gmw/en-us" for v in engine.voices())
            assert [w.process for w in engine._idle] == [spawned.process]
        else:
            assert spawned.process.wait(timeout=10) is not None
            assert (engine is None) == (settings == "broken")
    finally:
        if engine is not None:
            engine.close()
    assert spawned.process.poll() is not None


def test_the_parent_plays_with_the_garbage_collector_back_on(monkeypatch):
    # A split start turns the collector off while both processes import; hours of
    # playing without it would pile up cyclic garbage.
    import gc

    request = cli_play.prepare("grounding", config=Config(), minutes=None, sets=None,
                               vars_file=None, from_section=None, only=None, device=None,
                               volume=0.5, ambience=None, resume=False)  # fmt: skip
    seen = []

    def run(request, *, engine):
        # ...and with what was made meanwhile (modules, the request) out of its
        # sight: its first pass over all of that fell just when the first sound
        # was due. The request reached `run` is among what it does not walk.
        watched = {id(o) for o in gc.get_objects()}  # all but the frozen ones
        seen.append((gc.isenabled(), gc.get_freeze_count() > 0, id(request) in watched))
        return 0

    class Engine:
        def close(self) -> None:
            seen.append("closed")

    monkeypatch.setattr(cli_play, "run", run)
    gc.disable()
    try:
        assert launch._play(pickle.dumps(request), Engine()) == 0
    finally:
        gc.unfreeze()
        gc.enable()
    assert seen == [(True, True, False), "closed"]


def _prtvoice(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "prtvoice", *args], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.mark.parametrize("one_process", [False, True], ids=["split", "one-process"])
def test_a_bad_script_is_reported_once_with_its_status(tmp_path, one_process):
    bad = tmp_path / "bad.yaml"
    bad.write_text("prtvoice: 1\ntitle: Bad\nkind: custom\nsections:\n  - title: A\n"
                   "    steps:\n      - sayy: hello\n", encoding="utf-8")  # fmt: skip
    env = {"PRTVOICE_ONE_PROCESS": "1" if one_process else "0"}
    process = _prtvoice("play", str(bad), env=env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == int(ExitStatus.INPUT), err
    assert err.count("error:") == 1 and f"{bad}:7:9" in err, err
    assert "Traceback" not in err and out == ""


def _processes_marked(mark: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if mark.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("settings", ["default", "command engine"])
def test_no_speech_worker_outlives_a_play_that_fails(tmp_path, settings):
    # The worker starts before the script is read (or the settings): a script that
    # fails, or settings naming another engine, must not leave it running.
    bad = tmp_path / "bad.yaml"
    bad.write_text("prtvoice: 1\ntitle: Bad\nkind: custom\nsections:\n  - title: A\n"
                   "    steps:\n      - sayy: hello\n", encoding="utf-8")  # fmt: skip
    config = tmp_path / "config.yaml"
    if settings == "command engine":
        config.write_text("engine: command\ncommand: [espeak-ng, -w, '{out}', '{text}']\n")
    mark = f"PRTVOICE_TEST_MARK={tmp_path.name}"
    env = {"PRTVOICE_CONFIG": str(config), "PRTVOICE_TEST_MARK": tmp_path.name}
    process = _prtvoice("play", str(bad), env=env)
    _, err = process.communicate(timeout=60)
    assert process.returncode == int(ExitStatus.INPUT), err
    deadline = time.monotonic() + 30
    while (left := _processes_marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for the worker to see its input close; nothing is timed
    assert left == [], [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left]


@pytest.mark.parametrize("one_process", [False, True], ids=["split", "one-process"])
def test_traceback_shows_the_error_raised_while_reading(one_process):
    env = {"PRTVOICE_ONE_PROCESS": "1" if one_process else "0"}
    process = _prtvoice("--traceback", "play", "no-such-session.yaml", env=env)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "Traceback" in err and "InputError: no script file" in err, err


def test_a_usage_error_keeps_clicks_status():
    process = _prtvoice("play", "grounding", "--volume", "loud")
    _, err = process.communicate(timeout=60)
    assert process.returncode == int(ExitStatus.USAGE), err
    assert "Invalid value for '--volume'" in err and "Traceback" not in err


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(word) for word in text.split()]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_signal_while_both_processes_start_stops_both(tmp_path, how):
    # A script large enough that the child is still reading it when the signal lands.
    lines = "".join(f"      - say: Line number {i} of a long session.\n" for i in range(3000))
    script = tmp_path / "long.yaml"
    script.write_text(f"prtvoice: 1\ntitle: Long\nkind: custom\nsections:\n  - title: A\n"
                      f"    steps:\n{lines}", encoding="utf-8")  # fmt: skip
    process = _prtvoice("play", str(script))
    deadline = time.monotonic() + 30
    children: list[int] = []
    while not children and time.monotonic() < deadline and process.poll() is None:
        children = [c for c in _children(process.pid)
                    if "prtvoice.tts.worker" not in Path(f"/proc/{c}/cmdline").read_text()]  # fmt: skip
        time.sleep(0.002)  # polling for the fork; nothing is timed by it
    assert children, "play did not fork its reading child"
    process.send_signal(how)
    _, err = process.communicate(timeout=30)
    assert process.returncode == int(ExitStatus.INTERRUPTED), (process.returncode, err)
    assert err == "stopped\n", err
    for child in children:  # killed, not left to run on
        for _ in range(500):
            if not Path(f"/proc/{child}").exists() or "Z" in _state(child):
                break
            time.sleep(0.01)
        assert not Path(f"/proc/{child}").exists() or "Z" in _state(child)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


@pytest.mark.playback
def test_the_started_process_plays_and_leaves_no_zombie(pulse_sink, tmp_path):
    # The process that was started plays (its pid gets the signal and fades out),
    # and the child that read the script is reaped at once, not at the session's end.
    script = tmp_path / "calm.yaml"
    script.write_text("prtvoice: 1\ntitle: Calm\nkind: custom\nsections:\n  - title: A\n"
                      "    steps:\n      - say: Hello there.\n      - pause: 60s\n",
                      encoding="utf-8")  # fmt: skip
    recorder = pulse_sink.record()
    process = _prtvoice("play", str(script))
    deadline = time.monotonic() + 60
    while recorder.samples_so_far() == 0 or not _heard(recorder):
        assert time.monotonic() < deadline and process.poll() is None, "play made no sound"
        time.sleep(0.05)  # polling the recorder; nothing is timed by it
    states = {child: _state(child) for child in _children(process.pid)}
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    recorder.stop()
    assert process.returncode == int(ExitStatus.INTERRUPTED), err
    assert "stopped in section 1 (A)" in err
    assert "Z" not in states.values(), states


def _heard(recorder) -> bool:
    import numpy as np

    data = b"".join(list(recorder._chunks))
    samples = np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4")
    return bool(np.any(np.abs(samples) > 1e-3))
