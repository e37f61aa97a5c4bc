"""Decoding audio files with ffmpeg and resampling them with soxr."""

from __future__ import annotations

import io
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from prtvoice.decode import _read_wav, decode_file
from prtvoice.errors import SoundError

SR = 44100


def make(path, source: str, *extra: str) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, *extra, str(path)],
        check=True,
    )


def purity_db(x: np.ndarray, sr: int, freq: float) -> float:
    """Power outside freq±20 Hz relative to the power inside, in dB (lower is cleaner)."""
    window = np.blackman(len(x))
    power = np.abs(np.fft.rfft(x * window)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    near = np.abs(freqs - freq) <= 20
    return float(10 * np.log10(power[~near].sum() / power[near].sum()))


def test_a_1khz_sine_at_22050_stays_a_clean_1khz_at_44100(tmp_path):
    path = tmp_path / "sine.wav"
    make(path, "sine=frequency=1000:sample_rate=22050:duration=2")
    x = decode_file(path, sample_rate=SR, max_seconds=10)
    assert x.dtype == np.float32 and x.shape == (2 * SR, 1)
    y = x[SR // 2 : -SR // 2, 0].astype(np.float64)
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    assert abs(freqs[np.argmax(np.abs(np.fft.rfft(y)))] - 1000) < 1.5
    # A real resampler: no images (linear interpolation leaves -46 dB here; the
    # floor of -79 dB is the 16-bit source's own quantisation noise).
    assert purity_db(y, SR, 1000) < -75
    assert np.max(np.abs(y)) == pytest.approx(0.125, rel=0.01)  # lavfi's sine level


@pytest.mark.parametrize(
    ("name", "extra"),
    [("s.mp3", ()), ("s.ogg", ("-ac", "2")), ("s.flac", ()), ("s.m4a", ("-c:a", "aac"))],
)
def test_common_formats_decode_to_mono_at_the_session_rate(tmp_path, name, extra):
    path = tmp_path / name
    make(path, "sine=frequency=440:sample_rate=48000:duration=1.5", *extra)
    x = decode_file(path, sample_rate=SR, max_seconds=10)
    assert x.shape[1] == 1 and x.dtype == np.float32
    assert abs(len(x) - round(1.5 * SR)) < 0.03 * SR  # lossy codecs pad a little
    y = x[SR // 4 : SR, 0].astype(np.float64)
    assert purity_db(y, SR, 440) < -30  # lossy at ffmpeg's default bit rates


def test_stereo_is_mixed_to_mono(tmp_path):
    path = tmp_path / "st.wav"
    # Left a sine, right silence: mono is the plain average.
    make(path, "sine=frequency=500:sample_rate=44100:duration=1",
         "-af", "pan=stereo|c0=c0|c1=0*c0")  # fmt: skip
    x = decode_file(path, sample_rate=SR, max_seconds=5)
    assert np.max(np.abs(x)) == pytest.approx(0.0625, rel=0.02)


def test_corrupt_files_and_non_audio_are_sound_errors_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk" + bytes(range(256)) * 4)
    with pytest.raises(SoundError, match=r"garbage\.wav: cannot decode"):
        decode_file(garbage, sample_rate=SR, max_seconds=5)
    text = tmp_path / "notes.ogg"
    text.write_text("these are my notes, not a sound\n" * 10)
    with pytest.raises(SoundError, match=r"notes\.ogg"):
        decode_file(text, sample_rate=SR, max_seconds=5)
    image = tmp_path / "picture.png"
    make(image, "color=c=blue:s=16x16", "-frames:v", "1")
    with pytest.raises(SoundError, match=r"picture\.png: .*not an audio format"):
        decode_file(image, sample_rate=SR, max_seconds=5)
    video = tmp_path / "silent.mp4"
    make(video, "color=c=blue:s=16x16:d=1", "-c:v", "mpeg4")
    with pytest.raises(SoundError, match=r"silent\.mp4: .*no audio stream"):
        decode_file(video, sample_rate=SR, max_seconds=5)
    with pytest.raises(SoundError, match=r"missing\.wav: sound file not found"):
        decode_file(tmp_path / "missing.wav", sample_rate=SR, max_seconds=5)


def test_a_playlist_or_concat_file_cannot_pull_in_other_files(tmp_path):
    make(tmp_path / "a.wav", "sine=frequency=440:sample_rate=8000:duration=1")
    # Plain ffmpeg would happily play this (a "safe" relative name): prtvoice refuses
    # every demuxer that opens other files or URLs.
    (tmp_path / "list.ffconcat").write_text("ffconcat version 1.0\nfile 'a.wav'\nfile 'a.wav'\n")
    (tmp_path / "list.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n"
    )
    for name in ("list.ffconcat", "list.m3u8"):
        with pytest.raises(SoundError, match=rf"{name}: cannot decode"):
            decode_file(tmp_path / name, sample_rate=SR, max_seconds=5)


def test_a_file_name_is_never_an_ffmpeg_protocol(tmp_path, monkeypatch):
    make(tmp_path / "a.wav", "sine=frequency=440:sample_rate=8000:duration=1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "concat:a.wav|a.wav").write_bytes(b"not audio")
    with pytest.raises(SoundError, match="cannot decode"):
        decode_file(Path("concat:a.wav|a.wav"), sample_rate=SR, max_seconds=5)


def test_an_empty_audio_file_is_an_error(tmp_path):
    path = tmp_path / "empty.wav"
    make(path, "anullsrc=r=44100:cl=mono", "-t", "0")
    with pytest.raises(SoundError, match=r"empty\.wav"):
        decode_file(path, sample_rate=SR, max_seconds=5)


def test_a_long_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "long.flac"
    make(path, "sine=frequency=300:sample_rate=8000:duration=600")
    began = time.perf_counter()
    with pytest.raises(SoundError, match="longer than 3 s"):
        decode_file(path, sample_rate=SR, max_seconds=3)
    # ffmpeg is told to stop just past the limit: no decoding ten minutes of audio.
    assert time.perf_counter() - began < 5


def test_reading_stops_after_the_limit_on_an_endless_stream():
    rate = 1000
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 3, 1, rate, rate * 4, 4, 32)
    header += b"data" + struct.pack("<I", 0xFFFFFFFF)

    class Endless(io.RawIOBase):
        def __init__(self):
            self.sent = 0
            self.head = header

        def read(self, size=-1):
            if self.head:
                part, self.head = self.head[:size], self.head[size:]
                return part
            self.sent += size
            return bytes(size)

    stream = Endless()
    got_rate, channels, data, too_long = _read_wav(stream, max_seconds=2.0)
    assert got_rate == rate and channels == 1 and too_long
    assert len(data) == (2 * rate + 2) * 4  # the limit (+1 frame of slack) and one frame more
    assert stream.sent <= (2 * rate + 2) * 4 + 4  # bounded by the limit, not the stream


def test_a_hung_decoder_times_out(tmp_path):
    path = tmp_path / "s.wav"
    make(path, "sine=frequency=440:sample_rate=44100:duration=1")
    with pytest.raises(SoundError, match="did not finish"):
        decode_file(path, sample_rate=SR, max_seconds=5, timeout=0.001)


def test_same_rate_is_passed_through_bit_exactly(tmp_path):
    import scipy.io.wavfile

    samples = (np.random.default_rng(1).uniform(-0.5, 0.5, 5000)).astype(np.float32)
    path = tmp_path / "exact.wav"
    scipy.io.wavfile.write(path, SR, samples)
    x = decode_file(path, sample_rate=SR, max_seconds=5)
    assert np.array_equal(x[:, 0], samples)


def test_the_ffmpeg_that_imageio_ffmpeg_ships_decodes_the_same(tmp_path, monkeypatch):
    import imageio_ffmpeg

    from prtvoice.ffmpeg import find_ffmpeg

    path = tmp_path / "s.ogg"
    make(path, "sine=frequency=700:sample_rate=22050:duration=1")
    system = decode_file(path, sample_rate=SR, max_seconds=5)
    monkeypatch.setenv("PRTVOICE_FFMPEG", imageio_ffmpeg.get_ffmpeg_exe())
    find_ffmpeg.cache_clear()
    try:
        assert find_ffmpeg() == imageio_ffmpeg.get_ffmpeg_exe()
        bundled = decode_file(path, sample_rate=SR, max_seconds=5)
    finally:
        monkeypatch.delenv("PRTVOICE_FFMPEG")
        find_ffmpeg.cache_clear()
    assert bundled.shape == system.shape
    np.testing.assert_allclose(bundled, system, atol=1e-4)  # Vorbis decoders may differ by ulps
