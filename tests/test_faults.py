"""Faults, end to end through the real CLI in a subprocess.

Each fault must give a clear `error: ...` line, its exit status
(prtvoice.errors.ExitStatus), no traceback, no partial output, and leave the
clip cache consistent. Speech comes from eSpeak NG through the command engine
(real and fast); ffmpeg is real unless the test replaces it on purpose.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import wave
from pathlib import Path

import pytest

from prtvoice import paths
from prtvoice.errors import ExitStatus
from prtvoice.options import Options
from prtvoice.tts.cache import ClipCache

ESPEAK = shutil.which("espeak-ng")
FFMPEG = shutil.which("ffmpeg")
SCRIPT = """\
prtvoice: 1
title: Fault test
kind: custom
sections:
  - title: One
    steps:
      - sound: bell
      - say: Hello there, this is a short test.
      - pause: {pause}
  - title: Two
    steps:
      - say: Breathe out slowly.
      - pause: 2s
"""


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The environment of a prtvoice run: isolated folders, eSpeak NG as a command engine."""
    environ = dict(os.environ)
    config = Path(environ["PRTVOICE_CONFIG"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'engine: command\ncommand: ["{ESPEAK}", "-w", "{{out}}", "{{text}}"]\n')
    environ["PRTVOICE_CACHE"] = str(tmp_path / "cache")  # own cache: these tests damage it
    return environ


@pytest.fixture
def script(script_dir) -> Path:
    path = script_dir / "fault.yaml"
    path.write_text(SCRIPT.format(pause="3s"))
    return path


def run(args, env, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "prtvoice", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def assert_clean_failure(done, status: ExitStatus, *fragments: str) -> None:
    assert done.returncode == int(status), (done.returncode, done.stderr)
    assert done.stderr.startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def assert_cache_consistent(cache: Path) -> None:
    """Every clip in the cache is whole; no temporary file is left behind."""
    if not cache.exists():
        return
    rates = (Options().sample_rate, Options().export_sample_rate)  # play's, export's
    for clip in (cache / "clips").glob("*/*"):
        assert not clip.name.startswith(".tmp-"), f"leftover {clip}"
        with wave.open(str(clip), "rb") as f:
            rate = f.getframerate()
        assert rate in rates, f"{clip} at {rate} Hz"
        # (a store at another rate would take the clip for damaged and remove it)
        store = ClipCache(cache, sample_rate=rate)
        assert store.frames(clip.stem) is not None, f"damaged {clip}"


def fake_ffmpeg(tmp_path: Path, body: str) -> Path:
    """An ffmpeg that answers -encoders/-version and decodes for real but runs `body`
    to encode (an encode writes to a file, never to pipe:1)."""
    path = tmp_path / "fake-ffmpeg"
    path.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        case " $* " in
          *" -encoders "*|*" -version "*|*" pipe:1 "*) exec {FFMPEG} "$@" ;;
        esac
        """)
        + textwrap.dedent(body)
    )
    path.chmod(0o755)
    return path


# ----- ffmpeg missing or failing --------------------------------------------------------


def test_prtvoice_ffmpeg_naming_a_missing_binary(script, env, tmp_path):
    env["PRTVOICE_FFMPEG"] = str(tmp_path / "no-such-ffmpeg")
    done = run(["export", script, "-o", tmp_path / "out.mp3"], env)
    assert_clean_failure(done, ExitStatus.ENCODER, "PRTVOICE_FFMPEG names", "not an executable")
    assert not (tmp_path / "out.mp3").exists() and leftovers(tmp_path) == []
    # Found out before any work: not one clip was synthesized.
    assert not list((tmp_path / "cache").rglob("*.wav"))


def test_no_ffmpeg_on_path_and_no_imageio(script, env, tmp_path):
    stub = tmp_path / "stub"
    (stub / "imageio_ffmpeg").mkdir(parents=True)
    (stub / "imageio_ffmpeg" / "__init__.py").write_text(
        "def get_ffmpeg_exe():\n    raise RuntimeError('no ffmpeg binary in this package')\n"
    )
    env["PYTHONPATH"] = str(stub)
    env["PATH"] = str(tmp_path / "empty-bin")  # espeak-ng is named by its full path
    done = run(["export", script, "-o", tmp_path / "out.mp3"], env)
    assert_clean_failure(done, ExitStatus.ENCODER, "ffmpeg was not found")
    assert not (tmp_path / "out.mp3").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "body, words",
    [
        ("echo 'fake: unknown encoder' >&2\nexit 1\n", "fake: unknown encoder"),
        # Dies mid-stream: takes some audio, then is killed.
        ("head -c 200000 >/dev/null\nkill -9 $$\n", "ffmpeg"),
    ],
    ids=["exits-1", "dies-mid-stream"],
)
def test_failing_ffmpeg(script, env, tmp_path, body, words):
    env["PRTVOICE_FFMPEG"] = str(fake_ffmpeg(tmp_path, body))
    target = tmp_path / "out.mp3"
    target.write_bytes(b"the previous export")
    done = run(["export", script, "-o", target, "--force"], env)
    assert_clean_failure(done, ExitStatus.ENCODER, words)
    assert target.read_bytes() == b"the previous export"
    assert leftovers(tmp_path) == []
    assert_cache_consistent(Path(env["PRTVOICE_CACHE"]))


# ----- the voice ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, words",
    [
        ('["/no/such/tts", "-w", "{out}", "{text}"]', "was not found"),
        ('["false", "{text}", "{out}"]', "failed with status 1"),
        ('["sh", "-c", ": > \\"$1\\"", "sh", "{out}", "{text}"]', "wrote no audio"),
        ('["sh", "-c", "head -c 44 /dev/zero > \\"$1\\"", "sh", "{out}", "{text}"]', "no audio"),
    ],
    ids=["missing", "false", "empty-file", "header-only"],
)
def test_tts_command_missing_or_returning_nothing(script, env, tmp_path, command, words):
    Path(env["PRTVOICE_CONFIG"]).write_text(f"engine: command\ncommand: {command}\n")
    done = run(["export", script, "-o", tmp_path / "out.mp3"], env)
    assert_clean_failure(done, ExitStatus.VOICE, words)
    assert not (tmp_path / "out.mp3").exists() and leftovers(tmp_path) == []
    assert_cache_consistent(Path(env["PRTVOICE_CACHE"]))


def test_espeak_library_absent(script, env, tmp_path):
    stub = tmp_path / "stub"
    (stub / "espeakng_loader").mkdir(parents=True)
    (stub / "espeakng_loader" / "__init__.py").write_text("raise ImportError('not installed')\n")
    env["PYTHONPATH"] = str(stub)
    env["PRTVOICE_ESPEAK"] = "bundled"  # as on a machine without the system library
    Path(env["PRTVOICE_CONFIG"]).write_text("engine: pyttsx3\n")
    done = run(["outline", script], env)
    assert_clean_failure(done, ExitStatus.VOICE, "eSpeak NG was not found")


# ----- the disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs (we run as root here; CI runs as root in its container)."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk(script, env, small_disk):
    script.write_text(SCRIPT.format(pause="60s"))  # about 0.5 MB of MP3: cannot fit
    target = small_disk / "out.mp3"
    done = run(["export", script, "-o", target, "--format", "mp3"], env)
    assert_clean_failure(done, ExitStatus.ENCODER)
    assert "No space left" in done.stderr or "space" in done.stderr.lower(), done.stderr
    assert sorted(p.name for p in small_disk.iterdir()) == []  # no partial, no target


def test_a_full_disk_under_the_clip_cache(script, env, small_disk, tmp_path):
    # 64 KiB holds less than one clip: synthesis works, storing the clip does not.
    env["PRTVOICE_CACHE"] = str(small_disk)
    done = run(["export", script, "-o", tmp_path / "out.mp3"], env)
    assert_clean_failure(
        done, ExitStatus.VOICE, f"cannot store speech in the clip cache {small_disk}",
        "No space left on device",
    )  # fmt: skip
    assert not (tmp_path / "out.mp3").exists() and leftovers(tmp_path) == []
    assert not [p for p in small_disk.rglob(".tmp-*")]
    assert_cache_consistent(small_disk)


def test_an_unwritable_output_folder(script, env, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    # A read-only mount: root ignores permission bits, but not this.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], check=True)
    try:
        done = run(["export", script, "-o", folder / "out.mp3"], env)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
    assert_clean_failure(done, ExitStatus.ENCODER, str(folder))


# ----- corrupt input and cache -----------------------------------------------------------------


def test_a_corrupt_sound_file_is_located(script, env, tmp_path):
    (script.parent / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    script.write_text(SCRIPT.format(pause="1s").replace("sound: bell", "sound: broken.wav"))
    done = run(["outline", script], env)
    assert_clean_failure(
        done, ExitStatus.INPUT, f"error: {script}:7:9: the sound 'broken.wav' cannot be used"
    )
    done = run(["export", script, "-o", tmp_path / "out.mp3"], env)
    assert_clean_failure(done, ExitStatus.INPUT, "the sound 'broken.wav' cannot be used")
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.mp3").exists()


def test_a_damaged_cache_entry_is_rebuilt(script, env, tmp_path):
    first = run(["export", script, "-o", tmp_path / "a.wav"], env)
    assert first.returncode == 0, first.stderr
    clips = sorted((Path(env["PRTVOICE_CACHE"]) / "clips").glob("*/*.wav"))
    assert len(clips) == 2
    whole = clips[0].read_bytes()
    clips[0].write_bytes(whole[: len(whole) // 2])  # truncated, as by a crash or a full disk
    clips[1].write_bytes(b"not a wav at all")
    second = run(["export", script, "-o", tmp_path / "b.wav"], env)
    assert second.returncode == 0, second.stderr
    assert clips[0].read_bytes() == whole  # made again, the same
    assert_cache_consistent(Path(env["PRTVOICE_CACHE"]))
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


# ----- Ctrl-C, SIGTERM and a race for the target ----------------------------------------------


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)  # polling for a state, not timing anything
    return False


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("moment", ["starting", "synthesizing", "encoding"])
def test_interrupted_export(script, env, tmp_path, how, moment):
    script.write_text(SCRIPT.format(pause="100s"))  # long enough to catch in the encoding pass
    target = tmp_path / "out.mp3"
    target.write_bytes(b"the previous export")
    cache = Path(env["PRTVOICE_CACHE"])
    process = subprocess.Popen(
        [sys.executable, "-m", "prtvoice", "export", str(script), "-o", str(target), "--force"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if moment == "synthesizing":
        assert _wait_for(lambda: (cache / "clips").exists() or process.poll() is not None, 60)
    elif moment == "encoding":
        assert _wait_for(lambda: leftovers(tmp_path) or process.poll() is not None, 60)
    else:
        time.sleep(0.3)  # inside start-up: imports and loading the script
    process.send_signal(how)
    _, err = process.communicate(timeout=60)
    assert "Traceback" not in err, err
    if process.returncode == 0:  # it finished first: then the export must be whole
        assert target.stat().st_size > 10_000
    elif process.returncode == -signal.SIGTERM:
        # Before the export installs its handler the default action ends the process:
        # it has not written anything yet.
        assert moment == "starting" and target.read_bytes() == b"the previous export"
    else:
        # Death by SIGINT after the message is what a shell also reports as 130; it
        # happens when Ctrl-C lands in start-up code that re-raises it on the way out.
        interrupted = (int(ExitStatus.INTERRUPTED), -signal.SIGINT)
        assert process.returncode in interrupted, (process.returncode, err)
        assert target.read_bytes() == b"the previous export"
    assert leftovers(tmp_path) == []
    assert_cache_consistent(cache)


@pytest.mark.slow
def test_two_exports_to_one_target(script, env, tmp_path):
    target = tmp_path / "out.wav"  # a fast encoder: the race is at the commit
    warm = run(["outline", script], env)  # synthesize once, so both race on the encode
    assert warm.returncode == 0, warm.stderr
    command = [sys.executable, "-m", "prtvoice", "export", str(script), "-o", str(target)]
    first, second = (
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(2)
    )  # fmt: skip
    results = [(p.wait(timeout=120), p.stderr.read()) for p in (first, second)]
    statuses = sorted(code for code, _ in results)
    assert statuses == [0, int(ExitStatus.INPUT)], results
    loser = next(err for code, err in results if code)
    assert loser.startswith("error: ") and "--force" in loser and "Traceback" not in loser
    assert leftovers(tmp_path) == []
    with wave.open(str(target), "rb") as f:  # whole: the winner's file, never a mix
        assert f.getnframes() > 44100 and len(f.readframes(f.getnframes())) == 2 * f.getnframes()


def test_paths_used_by_these_tests_are_isolated(env):
    assert Path(env["PRTVOICE_CACHE"]) != paths.cache_dir()


# ----- playback: the device going away, Ctrl-C and SIGTERM -------------------------------------


def _start_play(script: Path, env: dict, sink) -> subprocess.Popen:
    env = {**env, **sink.env}
    process = subprocess.Popen(
        [sys.executable, "-m", "prtvoice", "play", str(script)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def playing() -> bool:  # our stream is connected to the server (besides the keeper's)
        listed = subprocess.run(
            ["pactl", "--server", sink.server, "list", "short", "sink-inputs"],
            capture_output=True,
            text=True,
        )
        return len(listed.stdout.splitlines()) >= 2 or process.poll() is not None

    assert _wait_for(playing, 60), "playback never started"
    assert process.poll() is None, process.communicate()
    return process


@pytest.fixture
def own_sink():
    """A PulseAudio server of this test alone: it may be killed mid-session."""
    from pulse import PulseSink

    sink = PulseSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.mark.playback
def test_the_audio_server_vanishing_mid_session(script, env, own_sink):
    script.write_text(SCRIPT.format(pause="60s"))
    recorder = own_sink.record()
    process = _start_play(script, env, own_sink)
    # Mid-session: the bell is heard. (A server that freezes instead: the test below.)
    assert _wait_for(lambda: bool((abs(recorder.so_far()) > 1e-3).any()), 60)
    recorder.stop(settle=0)
    own_sink.stop()  # the daemon we started, by its own pid: the device is gone
    _, err = process.communicate(timeout=60)
    assert process.returncode == int(ExitStatus.AUDIO_DEVICE), (process.returncode, err)
    assert err.lstrip().startswith("error: ") or "\nerror: " in err, err
    assert "Traceback" not in err


@pytest.mark.playback
@pytest.mark.parametrize("when", ["before-start", "mid-session", "listing-devices"])
def test_a_frozen_sound_server_ends_play_with_a_device_error(script, env, own_sink, when):
    # A server that stops answering (SIGSTOP) blocks PortAudio's calls for good:
    # loading PortAudio and opening the stream (frozen before play starts), or
    # stopping the stream after the callbacks stopped (frozen mid-session). Play
    # must still end, with status 4 and a message, not hang.
    script.write_text(SCRIPT.format(pause="60s"))
    frozen = own_sink.process
    try:
        if when in ("before-start", "listing-devices"):
            frozen.send_signal(signal.SIGSTOP)
            what = ["--list-devices"] if when == "listing-devices" else [str(script)]
            process = subprocess.Popen(
                [sys.executable, "-m", "prtvoice", "play", *what],
                env={**env, **own_sink.env}, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
        else:
            recorder = own_sink.record()
            process = _start_play(script, env, own_sink)
            assert _wait_for(lambda: bool((abs(recorder.so_far()) > 1e-3).any()), 60)
            recorder.stop(settle=0)
            frozen.send_signal(signal.SIGSTOP)
        _, err = process.communicate(timeout=60)
    finally:
        frozen.send_signal(signal.SIGCONT)
    assert process.returncode == int(ExitStatus.AUDIO_DEVICE), (process.returncode, err)
    assert err.lstrip().startswith("error: ") or "\nerror: " in err, err
    assert "sound server" in err
    assert "Traceback" not in err


@pytest.mark.playback
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_playback_stopped_by_a_signal(script, env, own_sink, how):
    script.write_text(SCRIPT.format(pause="60s"))
    process = _start_play(script, env, own_sink)
    process.send_signal(how)
    _, err = process.communicate(timeout=60)
    assert process.returncode == int(ExitStatus.INTERRUPTED), (process.returncode, err)
    assert "Traceback" not in err



@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_before_play_makes_sound_exits_130_quietly(how):
    # While play is still starting (config, the speech worker, audio modules) a
    # signal must end it with 130 and a plain word, wherever it lands.
    code = (
        "import os, signal, time\n"
        "from prtvoice.cli_common import signals_exit_quietly as _signals_exit_quietly\n"
        "with _signals_exit_quietly():\n"
        f"    os.kill(os.getpid(), {int(how)})\n"
        "    time.sleep(5)\n"
        "print('not reached')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == int(ExitStatus.INTERRUPTED), (done.returncode, done.stderr)
    assert done.stderr == "stopped\n"
    assert "not reached" not in done.stdout


def test_an_export_imports_nothing_once_signals_may_raise(script, env, tmp_path):
    # Once an export's work starts, SIGINT and SIGTERM raise; one landing inside an
    # import ended the interpreter itself (exit -2 after 'stopped'). So everything it
    # needs is imported before (cli._import_for_export), while a signal ends it quietly.
    spy = (
        "import contextlib, json, sys\n"
        "from prtvoice import atomic\n"
        "seen = {}\n"
        "original = atomic.sigterm_raises\n"
        "@contextlib.contextmanager\n"
        "def spied():\n"
        "    seen['before'] = set(sys.modules)\n"
        "    with original():\n"
        "        yield\n"
        "    seen['after'] = set(sys.modules)\n"
        "atomic.sigterm_raises = spied\n"
        "from prtvoice.cli import app\n"
        "try:\n"
        "    app(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(json.dumps(sorted(seen['after'] - seen['before'])))\n"
    )
    env = {**env}
    env.pop("PRTVOICE_CONFIG")  # the default engine: pyttsx3 in its worker processes
    target = tmp_path / "out.mp3"
    done = subprocess.run(
        [sys.executable, "-c", spy, "export", str(script), "-o", str(target), "-t", "lrc,srt"],
        env={**env, "PRTVOICE_CONFIG": str(tmp_path / "none.yaml")},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert target.is_file()
