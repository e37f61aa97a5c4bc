"""Joining two real LAME encodes (ffmpeg, the export's own settings) into one MP3.

The signal never falls silent at the cut (a noise bed under tones), so a join
that was off by a sample, or frames whose windows clash, would show.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mutagen.mp3
import numpy as np
import pytest
from export_helpers import decode, ffprobe

from prtvoice import mp3join
from prtvoice.encode import FORMATS, SECOND_HALF, Encoder, encoder_command
from prtvoice.ffmpeg import find_ffmpeg

SR = 22050
N = SR * 40 + 1234  # not a whole number of frames
WINDOW, PREROLL, TAIL = 6, 4, 6


def signal() -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(N) / SR
    bed = 0.02 * rng.standard_normal(N)
    tones = 0.4 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t) ** 2 * ((t % 7) < 4)
    return (bed + tones).astype(np.float32)


def encode(samples: np.ndarray, out: Path, overrides: tuple[str, ...] = ()) -> Path:
    command = encoder_command(
        ffmpeg=find_ffmpeg(), fmt=FORMATS["mp3"], sample_rate=SR, out=out, overrides=overrides
    )
    with Encoder(command) as encoder:
        encoder.write(samples.reshape(-1, 1))
    return out


@pytest.fixture(scope="module")
def encodes(tmp_path_factory):
    """One encoder over the whole; and the halves around a planned cut at frame 800."""
    folder = tmp_path_factory.mktemp("join")
    x = signal()
    cut = 800
    offset = cut - WINDOW - PREROLL
    whole = encode(x, folder / "whole.mp3")
    first = encode(x[: mp3join.FRAME * (cut + WINDOW + TAIL)], folder / "first.mp3")
    second = encode(x[mp3join.FRAME * offset :], folder / "second.mp3", SECOND_HALF)
    with_reservoir = encode(x[mp3join.FRAME * offset :], folder / "reservoir.mp3")
    return x, cut, offset, whole, first, second, with_reservoir


def joined_copy(encodes, tmp_path) -> tuple[Path, int]:
    x, cut, offset, _, first, second, _ = encodes
    target = tmp_path / "joined.mp3"
    shutil.copy(first, target)
    chosen = mp3join.join(
        target, second, offset_frames=offset, cuts=range(cut - WINDOW, cut + WINDOW + 1),
        samples=len(x),
    )  # fmt: skip
    return target, chosen


def test_crc16_is_the_lame_tags_crc():
    assert mp3join.crc16(b"123456789") == 0xBB3D  # CRC-16/ARC's check value
    rng = np.random.default_rng(1)
    a, b = rng.bytes(1000), rng.bytes(777)
    whole = mp3join.crc16(a + b)
    assert mp3join.joined_crc(mp3join.crc16(a), mp3join.crc16(b), len(b)) == whole
    state = mp3join.crc16(a)
    for count in (0, 1, 5, 4096, 100_000):
        assert mp3join.zero_shift(state, count) == mp3join.crc16(b"\0" * count, state)
        assert mp3join.zero_shift(mp3join.zero_shift(state, count), -count) == state
    for bit in range(16):  # zeros map the state by a map of order 32767
        assert mp3join.zero_shift(1 << bit, mp3join.ZERO_ORDER) == 1 << bit


def test_reads_what_ffmpeg_wrote_in_the_info_frame(encodes):
    x, _, _, whole, *_ = encodes
    info = mp3join.Info.read(whole)
    data = whole.read_bytes()
    audio = data[info.offset + len(info.frame) :]
    assert info.delay == 576
    assert info.music_crc == mp3join.crc16(audio)  # ffmpeg's own CRC of the frames
    assert len(mp3join.frame_offsets(whole, info.offset + len(info.frame))) == info.frames
    assert info.frames * mp3join.FRAME >= len(x) + info.delay


def test_the_joined_file_is_the_session_sample_for_sample(encodes, tmp_path):
    x, cut, _, whole, *_ = encodes
    target, chosen = joined_copy(encodes, tmp_path)
    assert cut - WINDOW <= chosen <= cut + WINDOW
    # A gapless decoder gives exactly the session's samples ...
    y = decode(target, sample_rate=SR)
    assert len(y) == len(x)
    # ... aligned (a sample off would make the error as large as the signal) ...
    single = decode(whole, sample_rate=SR)[: len(x)]
    error = np.sqrt(np.mean((y - x) ** 2))
    assert error <= 1.05 * np.sqrt(np.mean((single - x) ** 2))
    # ... with nothing at the join: the error there is what it is elsewhere.
    at = mp3join.FRAME * chosen - 1105
    near = np.sqrt(np.mean((y[at - 1152 : at + 1152] - x[at - 1152 : at + 1152]) ** 2))
    assert near < 2 * error
    # Before the cut the frames are the one encoder's, byte for byte.
    head = mp3join.Info.read(whole)
    ours = mp3join.Info.read(target)
    a = mp3join.frame_offsets(whole, head.offset + len(head.frame), limit=chosen + 1)
    b = mp3join.frame_offsets(target, ours.offset + len(ours.frame), limit=chosen + 1)
    whole_bytes, target_bytes = whole.read_bytes(), target.read_bytes()
    assert whole_bytes[a[0] : a[chosen]] == target_bytes[b[0] : b[chosen]]


def test_the_joined_files_tag_holds_for_the_whole(encodes, tmp_path):
    x, *_ = encodes
    target, _ = joined_copy(encodes, tmp_path)
    info = mp3join.Info.read(target)
    data = target.read_bytes()
    audio = data[info.offset + len(info.frame) :]
    frames = mp3join.frame_offsets(target, info.offset + len(info.frame))
    assert info.frames == len(frames)
    assert info.music_crc == mp3join.crc16(audio)
    tag = 4 + 9
    assert int.from_bytes(info.frame[tag + 12 : tag + 16], "big") == len(data) - info.offset
    padding = int.from_bytes(info.frame[tag + 141 : tag + 144], "big") & 0xFFF
    assert info.frames * mp3join.FRAME - info.delay - padding == len(x)
    zeroed = bytes(info.frame[: tag + 154]) + b"\0\0" + bytes(info.frame[tag + 156 : 190])
    assert mp3join.crc16(zeroed) == int.from_bytes(info.frame[tag + 154 : tag + 156], "big")
    toc = list(info.frame[tag + 16 : tag + 116])
    assert toc[0] == 0 and toc == sorted(toc) and 120 < toc[50] < 136
    # Other readers agree: ffprobe's stream, mutagen's length.
    stream = ffprobe(target, "-show_streams")["streams"][0]
    assert (stream["codec_name"], int(stream["sample_rate"]), stream["channels"]) == (
        "mp3", SR, 1
    )
    assert abs(mutagen.mp3.MP3(target).info.length - len(x) / SR) < 0.1


@pytest.mark.parametrize(
    ("second_index", "cuts", "match"),
    [
        (6, lambda cut, offset: range(cut - WINDOW, cut + WINDOW + 1), "reservoir"),
        # Before the second encode starts: none of these cuts has its frames.
        (5, lambda cut, offset: range(offset - 5, offset), "no cut"),
    ],
    ids=["bit-reservoir", "cuts-outside"],
)
def test_a_refused_join_leaves_the_file_as_it_was(encodes, tmp_path, second_index, cuts, match):
    x, cut, offset, _, first = encodes[:5]
    target = tmp_path / "joined.mp3"
    shutil.copy(first, target)
    before = target.read_bytes()
    with pytest.raises(mp3join.JoinError, match=match):
        mp3join.join(target, encodes[second_index], offset_frames=offset,
                     cuts=cuts(cut, offset), samples=len(x))  # fmt: skip
    assert target.read_bytes() == before


def test_only_mpeg2_mono_frames_are_handled(tmp_path):
    with pytest.raises(mp3join.JoinError):
        mp3join.frame_length(b"\xff\xfb\x90\x64")  # MPEG-1, 128k, 44.1 kHz, stereo
    with pytest.raises(mp3join.JoinError):
        mp3join.frame_length(b"ID3\x03")
    assert mp3join.frame_length(bytes([0xFF, 0xF3, 0xA0, 0xC0])) == 313  # 96k, 22.05 kHz
    assert mp3join.frame_length(bytes([0xFF, 0xF3, 0xA2, 0xC0])) == 314  # padded
    not_info = tmp_path / "x.mp3"
    not_info.write_bytes(bytes([0xFF, 0xF3, 0xA0, 0xC0]) + bytes(309))
    with pytest.raises(mp3join.JoinError, match="Info"):
        mp3join.Info.read(not_info)


@pytest.mark.parametrize(
    ("previous", "following", "fits"),
    [(0, 0, True), (0, 1, True), (0, 2, False), (1, 2, True), (1, 0, False),
     (2, 2, True), (2, 3, True), (2, 0, False), (3, 0, True), (3, 1, True), (3, 3, False)],
)  # fmt: skip
def test_windows_that_may_follow_each_other(previous, following, fits):
    assert mp3join.may_follow(previous, following) is fits


def test_one_encoders_file_is_trimmed_to_the_exact_length(tmp_path):
    # ffmpeg works the LAME tag's padding out from its last packet, and for some
    # lengths counts a frame LAME flushed short: this one decoded 37 samples long.
    x = np.resize(signal(), SR * 60 + 1234)  # the signal, repeated to a length ffmpeg miscounts
    path = encode(x, tmp_path / "one.mp3")
    assert len(decode(path, sample_rate=SR)) == len(x) + 37
    crc_before = mp3join.Info.read(path).music_crc
    assert mp3join.set_length(path, len(x)) is True
    assert len(decode(path, sample_rate=SR)) == len(x)
    info = mp3join.Info.read(path)
    assert info.music_crc == crc_before and info.padding == info.frames * 576 - 576 - len(x)
    tag = 4 + 9
    zeroed = bytes(info.frame[: tag + 154]) + b"\0\0" + bytes(info.frame[tag + 156 : 190])
    assert mp3join.crc16(zeroed) == int.from_bytes(info.frame[tag + 154 : tag + 156], "big")
    assert mp3join.set_length(path, len(x)) is False  # already right: left alone


def test_frame_offsets_walk_padded_and_other_frames_and_refuse_cut_short(tmp_path):
    # Built by hand: frames of 96k (313 bytes, 314 padded), one of 64k (209) between,
    # as a file that is not one CBR encode would have them; every offset must match.
    def frame(byte2: int) -> bytes:
        header = bytes([0xFF, 0xF3, byte2, 0xC0])
        return header + bytes(mp3join.frame_length(header) - 4)

    kinds = [0xA0, 0xA2, 0xA2, 0x80, 0xA0, 0xA2, 0xA0]  # 96k, padded, 64k ...
    data = b"".join(frame(k) for k in kinds)
    expected = list(np.cumsum([0] + [len(frame(k)) for k in kinds[:-1]]) + 10)
    path = tmp_path / "frames.mp3"
    path.write_bytes(bytes(10) + data)
    assert mp3join.frame_offsets(path, 10) == expected
    assert mp3join.frame_offsets(path, 10, limit=3) == expected[:3]
    assert mp3join.frame_offsets(path, 10 + len(data)) == []
    path.write_bytes(bytes(10) + data[:-5])
    with pytest.raises(mp3join.JoinError, match="last frame is cut short"):
        mp3join.frame_offsets(path, 10)
    path.write_bytes(bytes(10) + data + b"\xff\xf3")
    with pytest.raises(mp3join.JoinError, match="cut short inside a frame header"):
        mp3join.frame_offsets(path, 10)
    path.write_bytes(bytes(10) + data[:313] + b"ID3\x03" + data[317:])
    with pytest.raises(mp3join.JoinError, match="no frame header"):
        mp3join.frame_offsets(path, 10)
