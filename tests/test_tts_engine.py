"""The real pyttsx3 + eSpeak NG engine, its worker guards, and the eSpeak library choice."""

from __future__ import annotations

import os
import subprocess
import sys
import wave

import numpy as np
import pytest
from fresh import run_fresh

from prtvoice.errors import VoiceError
from prtvoice.tts.clip import read_engine_wav
from prtvoice.tts.pyttsx3_engine import Pyttsx3Engine

TEXT = "Let your breath slow down, and notice the sensation with curiosity."


@pytest.fixture(scope="module")
def engine():
    engine = Pyttsx3Engine()
    yield engine
    engine.close()


def speak(engine, tmp_path, *, text=TEXT, voice_id="gmw/en-us+steph", rate=1.0, volume=1.0):
    out = tmp_path / f"clip-{rate}-{volume}.wav"
    engine.synthesize(text, voice_id=voice_id, rate=rate, volume=volume, out=out)
    return out


def test_real_clip_is_speech_at_22050(engine, tmp_path):
    out = speak(engine, tmp_path)
    with wave.open(str(out)) as f:
        assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (22050, 1, 2)
    samples, rate = read_engine_wav(out)
    seconds = samples.size / rate
    assert 2.0 < seconds < 8.0  # ten words at a calm ~135 wpm
    # Speech energy: loud enough, mostly in the voice band.
    assert np.sqrt(np.mean(samples**2)) > 0.02
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    assert spectrum[(freqs > 80) & (freqs < 4000)].sum() > 0.8 * spectrum.sum()


def test_rate_changes_length_and_same_request_is_identical(engine, tmp_path):
    slow = read_engine_wav(speak(engine, tmp_path, rate=0.8))[0]
    fast = read_engine_wav(speak(engine, tmp_path, rate=1.6))[0]
    assert slow.size > 1.5 * fast.size
    again = read_engine_wav(speak(engine, tmp_path / "..", rate=0.8))[0]
    np.testing.assert_array_equal(slow, again)  # no state carried from clip to clip


def test_a_clip_does_not_depend_on_what_the_worker_said_or_loaded_before(tmp_path):
    # The worker keeps the last voice loaded between clips (each clip is spoken in a
    # child forked from it): a clip must still be the same bytes as from a fresh worker.
    def clip(engine, name, text, voice_id):
        out = tmp_path / name
        engine.synthesize(text, voice_id=voice_id, rate=0.9, volume=1.0, out=out)
        return out.read_bytes()

    busy = Pyttsx3Engine()
    try:
        for i, voice_id in enumerate(["gmw/en-us", "roa/fr+steph", "gmw/en-us+steph"]):
            clip(busy, f"before-{i}.wav", "Something else first, to change the state.", voice_id)
        used = clip(busy, "used.wav", TEXT, "gmw/en-us+steph")
        other = clip(busy, "other.wav", TEXT, "gmw/en-us")
    finally:
        busy.close()
    for voice_id, seen in (("gmw/en-us+steph", used), ("gmw/en-us", other)):
        fresh = Pyttsx3Engine()
        try:
            assert clip(fresh, f"fresh-{voice_id.replace('/', '_')}.wav", TEXT, voice_id) == seen
        finally:
            fresh.close()


def test_volume_scales(engine, tmp_path):
    loud = read_engine_wav(speak(engine, tmp_path, volume=1.0))[0]
    quiet = read_engine_wav(speak(engine, tmp_path, volume=0.5))[0]
    assert np.abs(quiet).max() < 0.7 * np.abs(loud).max()


def test_voices_listed_with_variants(engine):
    voices = {v.id: v for v in engine.voices()}
    assert "gmw/en-us" in voices and voices["gmw/en-us"].name == "English (America)"
    assert {"roa/fr", "gmw/de", "roa/es"} <= voices.keys()
    assert "steph" in engine.variants()
    assert engine.version.startswith("pyttsx3-2.99/espeak-ng-")


def test_unknown_voice_is_a_voice_error(engine, tmp_path):
    with pytest.raises(VoiceError, match="no voice 'xx-nothing'"):
        speak(engine, tmp_path, voice_id="xx-nothing")


def test_hanging_worker_is_killed_with_a_voice_error(tmp_path):
    # A worker that says it is ready and then never answers.
    argv = [
        sys.executable,
        "-c",
        "import sys, time; print('{\"ok\": true}', flush=True); time.sleep(60)",
    ]
    engine = Pyttsx3Engine(worker_argv=argv, timeout=1.0)
    with pytest.raises(VoiceError, match="hung"):
        engine.synthesize("hello", voice_id="en", rate=1, volume=1, out=tmp_path / "x.wav")
    assert engine._idle == []  # the hung worker is not reused


def test_worker_that_writes_nothing_is_a_voice_error(tmp_path):
    argv = [
        sys.executable,
        "-c",
        "import sys\nprint('{\"ok\": true}', flush=True)\n"
        "for line in sys.stdin: print('{\"ok\": true}', flush=True)",
    ]
    engine = Pyttsx3Engine(worker_argv=argv, timeout=5.0)
    with pytest.raises(VoiceError, match="wrote no audio"):
        engine.synthesize("hello", voice_id="en", rate=1, volume=1, out=tmp_path / "x.wav")
    engine.close()


def test_dead_worker_reports_its_stderr(tmp_path):
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('boom: no library'); sys.exit(3)"]
    with pytest.raises(VoiceError, match="boom: no library"):
        Pyttsx3Engine(worker_argv=argv).synthesize(
            "hello", voice_id="en", rate=1, volume=1, out=tmp_path / "x.wav"
        )


def test_a_warmed_worker_lists_voices_and_speaks_the_first_clip(tmp_path):
    engine = Pyttsx3Engine()
    try:
        engine.warm()
        engine.warm()  # once is enough: no second process
        voices = engine.voices()  # the warm-up worker's answer
        assert any(v.id == "gmw/en-us" for v in voices)
        assert len(engine._idle) == 1
        first = engine._idle[0]
        out = speak(engine, tmp_path)
        assert engine._idle == [first]  # the same worker spoke the clip
        samples, rate = read_engine_wav(out)
        assert rate == 22050 and samples.size > rate
        # The version read from its answer is the one computed here, without a worker.
        assert engine.version == Pyttsx3Engine().version
    finally:
        engine.close()
    assert engine._idle == []


def test_a_warm_up_that_fails_is_reported_by_the_first_request(tmp_path):
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('boom: no library'); sys.exit(3)"]
    engine = Pyttsx3Engine(worker_argv=argv)
    engine.warm()  # never raises: nobody would see it
    with pytest.raises(VoiceError, match="boom: no library"):
        speak(engine, tmp_path)
    engine.close()


def test_closing_while_a_worker_warms_up_stops_it(tmp_path):
    # A worker that never gets ready: close() must not wait out its start time-out.
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    engine = Pyttsx3Engine(worker_argv=argv, timeout=30.0)
    engine.warm()
    process = engine._warm_worker.process
    engine.close()
    assert process.poll() is not None and engine._idle == []


def test_a_worker_spawned_earlier_is_taken_over(tmp_path):
    # `play` starts the worker process before it forks (prtvoice.launch); the
    # parent's engine then takes it over instead of starting its own.
    from prtvoice.tts.spawn import spawn

    spawned = spawn()
    engine = Pyttsx3Engine()
    try:
        engine.warm(spawned=spawned)
        assert engine._warm_worker.process is spawned.process  # no second process
        out = speak(engine, tmp_path)
        assert [w.process for w in engine._idle] == [spawned.process]
        samples, rate = read_engine_wav(out)
        assert rate == 22050 and samples.size > rate
        assert any(v.id == "gmw/en-us" for v in engine.voices())
    finally:
        engine.close()
    assert spawned.process.poll() is not None


def test_a_spawned_worker_not_wanted_is_stopped(tmp_path):
    from prtvoice.tts.spawn import spawn

    other = spawn()  # the default worker, for an engine set to run another command
    argv = [sys.executable, "-m", "prtvoice.tts.worker"]
    engine = Pyttsx3Engine(worker_argv=[*argv, "--unused-flag"])
    engine.warm(spawned=other)
    assert other.process.wait(timeout=10) is not None
    assert engine._warm_worker is None or engine._warm_worker.process is not other.process
    engine.close()
    busy = Pyttsx3Engine()  # already warming: a second spawned one is not kept either
    busy.warm()
    extra = spawn()
    busy.warm(spawned=extra)
    assert extra.process.wait(timeout=10) is not None
    busy.close()


@pytest.mark.parametrize("choice", ["bundled", "system"])
def test_espeak_library_choice_in_a_subprocess(tmp_path, choice):
    """PRTVOICE_ESPEAK=bundled speaks with the pip-shipped library even where the
    system one exists; the loaded library is the one reported."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from prtvoice.tts.espeak import load_espeak\n"
        "from prtvoice.tts.pyttsx3_engine import Pyttsx3Engine\n"
        "source = load_espeak().source\n"
        "import pyttsx3.drivers._espeak  # finds the library loaded above by its soname\n"
        "maps = Path('/proc/self/maps').read_text()\n"
        "libs = {l.split()[-1] for l in maps.splitlines() if 'libespeak-ng' in l}\n"
        "e = Pyttsx3Engine()\n"
        "out = Path(sys.argv[1])\n"
        "e.synthesize('Hello there.', voice_id='gmw/en-us', rate=1, volume=1, out=out)\n"
        "info = e.info()\n"
        "print(source, len(libs), libs.pop(), info['source'], info['data_path'],\n"
        "      out.stat().st_size, e.describe())\n"
        "e.close()\n"
    )
    env = {**os.environ, "PRTVOICE_ESPEAK": choice}
    env.pop("ESPEAK_DATA_PATH", None)
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "x.wav")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    source, count, lib, worker_source, data_path, size, *describe = done.stdout.split()
    assert source == worker_source == choice
    assert count == "1"  # one eSpeak NG in the process: pyttsx3 reuses the one we loaded
    assert ("espeakng_loader" in lib) == (choice == "bundled")
    assert ("espeakng_loader" in data_path) == (choice == "bundled")
    assert int(size) > 10_000
    assert f"({choice} library" in " ".join(describe)


def test_the_fast_wav_reader_gives_the_general_readers_samples(tmp_path):
    import wave

    import numpy as np
    from scipy.io import wavfile

    pcm = (np.sin(np.arange(5000) / 7) * 30000).astype("<i2")
    path = tmp_path / "clip.wav"
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(22050)
        f.writeframes(pcm.tobytes())
    samples, rate = read_engine_wav(path)
    rate_general, data = wavfile.read(path)
    assert rate == rate_general == 22050
    assert np.array_equal(samples, (data.astype(np.float64) / 32768.0).astype(np.float32))


def test_a_speech_worker_starts_without_the_heavy_modules():
    # Every worker (one per core for an export, one beside play's first sound)
    # pays for what it imports: no numpy, typing or dataclasses (with inspect,
    # ast ...) on the way to a ready eSpeak NG (~20 % of a worker's start).
    code = (
        "import sys\n"
        "from prtvoice.tts import worker\n"
        "worker.Speaker()\n"
        "heavy = {'numpy', 'typing', 'dataclasses', 'inspect', 'prtvoice.errors'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    assert run_fresh(code).strip().splitlines()[-1] == "[]"


def test_a_speech_worker_lists_its_voices_without_importlib_metadata():
    # On a cold cache the voice list (with pyttsx3's version, part of every clip's
    # key) comes before the first clip; importing importlib.metadata took ~50 ms of it.
    code = (
        "import sys\n"
        "from prtvoice.tts import worker\n"
        "info = worker.Speaker().info()\n"
        "assert info['pyttsx3'] not in ('', 'unknown'), info['pyttsx3']\n"
        "assert info['voices'], 'no voices'\n"
        "print('importlib.metadata' in sys.modules, 'email' in sys.modules)\n"
    )
    assert run_fresh(code).strip().splitlines()[-1] == "False False"


def test_pyttsx3_version_read_from_its_folder_is_importlib_metadatas():
    from importlib.metadata import version

    from prtvoice.tts.espeak import pyttsx3_version

    pyttsx3_version.cache_clear()
    assert pyttsx3_version() == version("pyttsx3")


@pytest.mark.parametrize("folders", [0, 2])
def test_pyttsx3_version_asks_importlib_metadata_when_its_folder_does_not_tell(
    tmp_path, monkeypatch, folders
):
    # No .dist-info beside the package (an egg, an editable checkout), or two of them
    # (a broken upgrade): importlib.metadata's own answer, not a guess.
    import importlib.machinery
    import importlib.metadata
    import importlib.util

    from prtvoice.tts import espeak

    package = tmp_path / "site" / "pyttsx3"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for number in range(folders):
        info = tmp_path / "site" / f"pyttsx3-9.{number}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: pyttsx3\nVersion: 9.{number}\n"
        )
    spec = importlib.machinery.ModuleSpec("pyttsx3", None, origin=str(package / "__init__.py"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "from-importlib")
    espeak.pyttsx3_version.cache_clear()
    try:
        assert espeak.pyttsx3_version() == "from-importlib"
    finally:
        espeak.pyttsx3_version.cache_clear()


def test_pyttsx3_version_reads_the_version_field_of_the_metadata(tmp_path, monkeypatch):
    import importlib.machinery
    import importlib.util

    from prtvoice.tts import espeak

    package = tmp_path / "pyttsx3"
    package.mkdir()
    (package / "__init__.py").write_text("")
    info = tmp_path / "pyttsx3-7.1.dist-info"
    info.mkdir()
    # The header ends at the first blank line: a "Version:" in the description is not it.
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pyttsx3\nVersion: 7.1.post2\n\nVersion: 0.0 (in the text)\n"
    )
    spec = importlib.machinery.ModuleSpec("pyttsx3", None, origin=str(package / "__init__.py"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    espeak.pyttsx3_version.cache_clear()
    try:
        assert espeak.pyttsx3_version() == "7.1.post2"
    finally:
        espeak.pyttsx3_version.cache_clear()
