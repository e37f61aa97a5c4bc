"""Shared fixtures: one per kind of resource (see house style).

Helpers add their fixtures below with small, targeted insertions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # tests/fakes.py and other test helpers import by name

from fakes import FakeSounds, FakeSpeech  # noqa: E402

from prtvoice.options import Options  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Never touch the real user's cache, config, scripts or resume state."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PRTVOICE_HOME", str(home / "data"))
    monkeypatch.setenv("PRTVOICE_CONFIG", str(home / "config.yaml"))
    monkeypatch.setenv("PRTVOICE_STATE", str(home / "state"))
    monkeypatch.setenv("PRTVOICE_CACHE", str(_shared_cache(tmp_path_factory)))


_CACHE: list[Path] = []


def _shared_cache(factory) -> Path:
    # One clip cache for the whole run: real synthesis is paid once per text.
    if not _CACHE:
        _CACHE.append(factory.mktemp("clip-cache"))
    return _CACHE[0]


@pytest.fixture(scope="session")
def clip_cache_dir(tmp_path_factory) -> Path:
    """The run's shared clip cache: the folder PRTVOICE_CACHE names in every test."""
    return _shared_cache(tmp_path_factory)


@pytest.fixture
def options() -> Options:
    return Options()


@pytest.fixture
def fake_speech(options) -> FakeSpeech:
    return FakeSpeech(options.sample_rate)


@pytest.fixture
def fake_sounds(options) -> FakeSounds:
    return FakeSounds(options.sample_rate)


@pytest.fixture
def script_dir(tmp_path) -> Path:
    """An empty folder for scripts a test writes."""
    folder = tmp_path / "scripts"
    folder.mkdir()
    return folder


@pytest.fixture(scope="session")
def pulse_sink():
    """A private PulseAudio server with a null sink; this process plays into it.

    PortAudio reaches it through ALSA's pulse plugin. PortAudio lists devices
    when it initializes, so if sounddevice was imported before, it is
    re-initialized here. Playback tests FAIL (never skip) when this breaks.
    """
    import os

    from pulse import PulseSink

    sink = PulseSink().start()
    saved = {key: os.environ.get(key) for key in sink.env}
    os.environ.update(sink.env)
    if "sounddevice" in sys.modules:
        sd = sys.modules["sounddevice"]
        sd._terminate()
        sd._initialize()
    try:
        yield sink
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sink.stop()


@pytest.fixture(scope="module", params=[None, "pink-noise"], ids=["silent-pauses", "ambience"])
def long_real(request, tmp_path_factory):
    """A real ~2.2 min plan (ten sections), with or without an ambience bed: long
    enough to export in halves and to measure in two processes (test_halves, test_pass1)."""
    from export_helpers import EspeakVoices, make_plan, session_script

    from prtvoice import export as exporting
    from prtvoice import halves
    from prtvoice.sounds import SoundBank

    options = Options(ambience=request.param).for_export()
    sr = options.sample_rate
    voices = EspeakVoices(tmp_path_factory.mktemp("espeak"), sample_rate=sr)
    sounds = SoundBank(sample_rate=sr)
    plan = make_plan(session_script(10), voices, sounds, options)
    assert plan.frames > halves.MIN_SECONDS * sr
    blocks = exporting.blocks_from_plan(plan, voices=voices, sounds=sounds, options=options)
    return plan, blocks, options
