"""The voice bank over the real engine: cache hits, misses, damage, parallel prefetch."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from prtvoice.errors import VoiceError
from prtvoice.script import VoiceSettings
from prtvoice.tts.bank import VoiceBank
from prtvoice.tts.command_engine import CommandEngine
from prtvoice.tts.pyttsx3_engine import Pyttsx3Engine

SR = 44100
CALM = VoiceSettings()
TEXTS = [f"Breath number {n}. Notice what you feel, gently." for n in range(6)]


class Counting:
    """The real engine, counting its synthesize calls."""

    def __init__(self, engine):
        self.inner = engine
        self.name, self.version = engine.name, engine.version
        self.calls = 0
        self._lock = threading.Lock()

    def voices(self):
        return self.inner.voices()

    def variants(self):
        return self.inner.variants()

    def synthesize(self, text, **kwargs):
        with self._lock:
            self.calls += 1
        self.inner.synthesize(text, **kwargs)

    def close(self):
        pass


@pytest.fixture(scope="module")
def real_engine():
    engine = Pyttsx3Engine()
    yield engine
    engine.close()


@pytest.fixture
def counting(real_engine):
    return Counting(real_engine)


def test_clip_contract_and_frames_agree(counting, tmp_path):
    bank = VoiceBank(engine=counting, cache_dir=tmp_path, sample_rate=SR)
    frames = bank.frames(TEXTS[0], CALM, "en")
    clip = bank.clip(TEXTS[0], CALM, "en")
    assert clip.dtype == np.float32 and clip.shape == (frames, 1)
    assert np.abs(clip).max() <= 1.0 and np.abs(clip).max() > 0.1
    # Trimmed with a small margin, faded: starts and ends near silence.
    assert np.abs(clip[:20]).max() < 0.01 and np.abs(clip[-20:]).max() < 0.01
    lead = np.flatnonzero(np.abs(clip[:, 0]) > 10 ** (-60 / 20))[0]
    assert lead < 0.05 * SR
    assert counting.calls == 1


def test_cache_hit_needs_no_engine_call(counting, tmp_path):
    first = VoiceBank(engine=counting, cache_dir=tmp_path, sample_rate=SR)
    clip = first.clip(TEXTS[1], CALM, "en")
    again = VoiceBank(engine=counting, cache_dir=tmp_path, sample_rate=SR)
    assert again.known_frames(TEXTS[1], CALM, "en") == len(clip)
    np.testing.assert_array_equal(again.clip(TEXTS[1], CALM, "en"), clip)
    assert counting.calls == 1
    assert again.known_frames(TEXTS[2], CALM, "en") is None  # a miss, not synthesized
    assert counting.calls == 1


def test_the_voice_list_is_cached_without_an_fsync_and_a_torn_one_is_asked_again(
    counting, tmp_path, monkeypatch
):
    # On the way to a session's first clip: an fsync took up to 30 ms here. A crash
    # can then leave the file empty; the list is asked of the engine again.
    import os

    from prtvoice import atomic

    synced, fsync = [], os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: synced.append(fd) or fsync(fd))
    bank = VoiceBank(engine=counting, cache_dir=tmp_path, sample_rate=SR)
    voices = bank.voices()
    (stored,) = tmp_path.glob("voices-*.json")
    assert synced == [] and voices
    stored.write_text("")  # what a crash before the data reached the disk leaves
    asked = []
    monkeypatch.setattr(counting, "voices", lambda: asked.append(1) or counting.inner.voices())
    again = VoiceBank(engine=counting, cache_dir=tmp_path, sample_rate=SR)
    assert again.voices() == voices and asked == [1]
    assert stored.read_text()  # and stored again
    atomic.replace_small_file(tmp_path / "settings.yaml", "x: 1\n")
    assert len(synced) == 1  # settings and state files are still made durable


def test_rate_and_voice_are_part_of_the_key(counting, tmp_path):
    bank = VoiceBank(engine=counting, cache_dir=tmp_path, sample_rate=SR)
    normal = bank.frames(TEXTS[0], CALM, "en")
    slow = bank.frames(TEXTS[0], VoiceSettings(rate=0.7), "en")
    assert slow > 1.2 * normal
    bank.frames(TEXTS[0], CALM, "de")  # another default voice
    assert counting.calls == 3


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "header", "rate", "extra"])
def test_damaged_entry_is_rebuilt(counting, tmp_path, damage):
    bank = VoiceBank(engine=counting, cache_dir=tmp_path, sample_rate=SR)
    clip = bank.clip(TEXTS[0], CALM, "en")
    path = next((tmp_path / "clips").rglob("*.wav"))
    data = path.read_bytes()
    path.write_bytes(
        {
            "truncate": data[: len(data) // 2],
            "garbage": b"not a wav" * 100,
            "empty": b"",
            "header": data[:44],
            # A header for another sample rate; one byte past the samples.
            "rate": data[:24] + (SR // 2).to_bytes(4, "little") + data[28:],
            "extra": data + b"\0",
        }[damage]
    )
    fresh = VoiceBank(engine=counting, cache_dir=tmp_path, sample_rate=SR)
    np.testing.assert_array_equal(fresh.clip(TEXTS[0], CALM, "en"), clip)
    assert counting.calls == 2


def test_parallel_prefetch_equals_serial(real_engine, tmp_path):
    requests = [(t, CALM, "en") for t in TEXTS]
    serial = Counting(real_engine)
    one = VoiceBank(engine=serial, cache_dir=tmp_path / "a", sample_rate=SR, jobs=1)
    one.prefetch(requests)
    parallel = Counting(Pyttsx3Engine())
    two = VoiceBank(engine=parallel, cache_dir=tmp_path / "b", sample_rate=SR, jobs=2)
    two.prefetch(reversed(requests))
    assert serial.calls == parallel.calls == len(TEXTS)
    for text in TEXTS:
        np.testing.assert_array_equal(one.clip(text, CALM, "en"), two.clip(text, CALM, "en"))
    two.close()
    parallel.inner.close()


def test_background_prefetch_never_duplicates(counting, tmp_path):
    bank = VoiceBank(engine=counting, cache_dir=tmp_path, sample_rate=SR, jobs=2)
    handle = bank.prefetch_background([(t, CALM, "en") for t in TEXTS])
    # Ask for the last one at once: taken over or waited for, never made twice.
    assert bank.frames(TEXTS[-1], CALM, "en") > 0
    handle.wait()
    assert handle.done()
    lengths = [bank.frames(t, CALM, "en") for t in TEXTS]
    assert all(n > 0 for n in lengths)
    assert counting.calls == len(TEXTS)
    bank.close()


def test_unknown_voice_names_close_matches(counting, tmp_path):
    bank = VoiceBank(engine=counting, cache_dir=tmp_path, sample_rate=SR)
    assert bank.resolve(VoiceSettings(name="gmw/en-us"), "en") == "gmw/en-us"
    assert bank.resolve(VoiceSettings(name="english (america)"), "en") == "gmw/en-us"
    assert bank.resolve(VoiceSettings(name="en-us+F3"), "en") == "gmw/en-us+f3"
    assert bank.resolve(CALM, "fr") == "roa/fr+steph"
    with pytest.raises(VoiceError, match=r"unknown voice 'Englsh'.*did you mean.*English"):
        bank.resolve(VoiceSettings(name="Englsh"), "en")
    with pytest.raises(VoiceError, match=r"matches .* voices"):
        bank.resolve(VoiceSettings(name="english"), "en")


class Broken:
    name, version = "fake", "1"

    def __init__(self, payload: bytes):
        self.payload = payload

    def voices(self):
        from prtvoice.tts.engine import VoiceInfo

        return [VoiceInfo("v", "V", ("en",))]

    def synthesize(self, text, *, voice_id, rate, volume, out):
        out.write_bytes(self.payload)


def test_empty_or_silent_output_is_an_error_not_silence(tmp_path):
    import io
    import wave

    silent = io.BytesIO()
    with wave.open(silent, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(22050)
        f.writeframes(b"\0\0" * 22050)
    for payload, message in ((b"", "no audio"), (silent.getvalue(), "only silence")):
        bank = VoiceBank(engine=Broken(payload), cache_dir=tmp_path, sample_rate=SR)
        with pytest.raises(VoiceError, match=message):
            bank.frames("hello", CALM, "en")
        assert not list(tmp_path.rglob("*.wav"))


def test_command_engine_clips_through_the_bank(tmp_path):
    engine = CommandEngine(
        argv=["espeak-ng", "-v", "{voice}", "-s", "{wpm}", "-w", "{out}", "{text}"],
        default_voice="en-us",
    )
    bank = VoiceBank(engine=engine, cache_dir=tmp_path, sample_rate=SR)
    assert bank.resolve(CALM, "en") == "en-us"
    assert bank.frames("Hello there.", CALM, "en") > 0.3 * SR


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_a_stored_clip_reads_back_through_the_short_path_unchanged(tmp_path, rate):
    # load() reads files exactly as store() writes them in one go; the header it
    # expects must be the wave module's, or every read would take the long path.
    import wave

    from prtvoice.tts.cache import ClipCache, pcm_header

    cache = ClipCache(tmp_path, sample_rate=rate)
    clip = (np.sin(np.arange(rate // 3) * 0.05) * 0.8).astype(np.float32).reshape(-1, 1)
    clip[::97] = -1.0  # the extremes too
    stored = cache.store("ab" + "0" * 30, clip)
    path = cache.path("ab" + "0" * 30)
    with wave.open(str(path), "rb") as f:
        frames = f.getnframes()
    assert path.read_bytes()[:44] == pcm_header(rate, frames)
    loaded = cache.load("ab" + "0" * 30)
    np.testing.assert_array_equal(loaded, stored)
    np.testing.assert_array_equal(loaded, cache._load_checked("ab" + "0" * 30))
    assert loaded.dtype == np.float32 and loaded.shape == (frames, 1)


def test_engine_files_go_to_one_private_folder_that_is_left_empty_and_removed(
    counting, tmp_path
):
    seen = []

    class Watching(Counting):
        def synthesize(self, text, **kwargs):
            seen.append(kwargs["out"])
            if text == "fails":
                kwargs["out"].write_bytes(b"half a file")
                raise VoiceError("the engine broke")
            super().synthesize(text, **kwargs)

    bank = VoiceBank(engine=Watching(counting.inner), cache_dir=tmp_path / "c", sample_rate=SR)
    bank.prefetch([(t, CALM, "en") for t in TEXTS[:3]])
    with pytest.raises(VoiceError, match="broke"):
        bank.clip("fails", CALM, "en")
    folder = seen[0].parent
    assert {p.parent for p in seen} == {folder} and len(set(seen)) == 4  # a name per clip
    assert folder.is_dir() and not any(folder.iterdir())  # each engine WAV read, then gone
    bank.close()
    assert not folder.exists()


def _reference_shape(samples, engine_rate, sample_rate):
    """The clip shaping as first written, all in float64: the specification."""
    import soxr

    from prtvoice.tts.clip import FADE_SECONDS, LEAD_SECONDS, SILENCE, TAIL_SECONDS

    loud = np.flatnonzero(np.abs(samples) > SILENCE)
    start = max(0, int(loud[0]) - round(LEAD_SECONDS * engine_rate))
    end = min(samples.size, int(loud[-1]) + 1 + round(TAIL_SECONDS * engine_rate))
    clip = samples[start:end].astype(np.float64)
    fade = min(round(FADE_SECONDS * engine_rate), clip.size // 2)
    if fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade, endpoint=False))
        clip[:fade] *= ramp
        clip[clip.size - fade :] *= ramp[::-1]
    if engine_rate != sample_rate:
        clip = soxr.resample(clip, engine_rate, sample_rate, quality="HQ")
    return np.clip(clip, -1.0, 1.0).astype(np.float32).reshape(-1, 1)


def test_shaping_gives_exactly_the_float64_reference(real_engine, tmp_path):
    # Clips are cached by what they are asked, not by how they were shaped: a
    # faster shaping must give the very same samples, or old caches would disagree.
    from prtvoice.tts.clip import read_engine_wav, shape_clip

    voice = real_engine.voices()[0].id
    inputs = []
    for n, text in enumerate([*TEXTS[:3], "Hi.", "A"]):
        out = tmp_path / f"{n}.wav"
        real_engine.synthesize(text, voice_id=voice, rate=0.62, volume=1.0, out=out)
        samples, rate = read_engine_wav(out)
        pcm = np.frombuffer(out.read_bytes()[44:], dtype="<i2")
        np.testing.assert_array_equal(samples, (pcm / 32768.0).astype(np.float32))
        inputs.append((samples, rate))
    rng = np.random.default_rng(4)
    for _ in range(40):  # odd shapes: short, loud past full scale, a lone click
        x = (rng.standard_normal(int(rng.integers(1, 2000))) * rng.choice([0.3, 2.0])).astype(
            np.float32
        )
        x[: int(rng.integers(0, len(x)))] = 0
        x[-1] = 0.9
        inputs.append((x, 22050))
    for samples, rate in inputs:
        for sample_rate in (rate, 44100):
            got = shape_clip(samples, engine_rate=rate, sample_rate=sample_rate)
            want = _reference_shape(samples, rate, sample_rate)
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
