"""Joining two MP3 encodes of one session's halves into one gapless file.

LAME encodes on one core. An export can encode a session's first half and its
second half at once, each in its own ffmpeg, and join them: the first encode's
frames up to a cut, then the second's from the cut on. That is exact because:

- the second encoder starts on a frame boundary of the first's grid (its input
  begins a whole number of 576-sample frames into the session), so its frame j
  holds the same samples as the first's frame j + offset;
- it starts a few frames before the cut (its filter banks settle on real audio),
  and the first encoder runs a few frames past it, so the frames on both sides
  of the cut are what one encoder would have made, up to quantisation;
- it runs without a bit reservoir (`-reservoir 0`): each of its frames carries
  all of its own bits, none in the frames before the cut that were dropped;
- the cut falls between frames whose window shapes may follow each other
  (long after long or stop, short or stop after start or short), so the
  decoder's overlap-add cancels its aliasing as it does inside one stream.

Then the first file's LAME "Info" frame is rewritten for the whole: frame and
byte counts, seek table, encoder padding (so a gapless player trims exactly to
the session's samples) and both CRCs. ffmpeg computes each file's music CRC as
it writes; the joined file's is worked out from them and the few frames dropped,
since CRC-16 is linear (no pass over the audio in Python).

Only what an export makes is handled: MPEG-2/2.5 Layer III, mono, CBR, the Info
frame ffmpeg writes. Anything else raises JoinError, and the caller encodes in
one piece instead.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FRAME = 576  # samples per MPEG-2/2.5 Layer III frame (one granule)
DECODER_DELAY = 529  # samples every Layer III decoder adds before the encoder's delay
# LAME's own delay (576, which its Info frame records) and the decoder's: frame c of a
# stream holds the input's samples from FRAME * c - LAME_DELAY.
LAME_DELAY = 576 + DECODER_DELAY
_KBITS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_RATES = {2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # version bits 10: MPEG-2, 00: 2.5
_SIDE_INFO = 9  # bytes of side information in an MPEG-2 mono frame
_TOC = 100
_TAG = 156  # bytes of the Xing/Info + LAME tag ffmpeg writes (from "Info" to the tag CRC)
_CRC_SPAN = 190  # the LAME tag CRC covers the frame's first 190 bytes
_READ = 1 << 20  # bytes read at a time when walking the frames
_WORD = struct.Struct(">I")  # a frame header as one big-endian word


class JoinError(Exception):
    """The encodes cannot be joined as made (the export then encodes in one piece)."""


# -- frames ------------------------------------------------------------------


def frame_length(header: bytes) -> int:
    """Bytes in the frame starting with `header` (4 bytes): MPEG-2/2.5 Layer III mono only."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        raise JoinError("no frame header where one was expected")
    version = (header[1] >> 3) & 3
    layer = (header[1] >> 1) & 3
    bitrate = _KBITS[header[2] >> 4] if header[2] >> 4 < len(_KBITS) else 0
    rate_index = (header[2] >> 2) & 3
    if version not in _RATES or layer != 1 or not bitrate or rate_index == 3:
        raise JoinError("not an MPEG-2 Layer III frame")
    if header[3] >> 6 != 3:
        raise JoinError("not a mono frame")
    if not header[1] & 1:
        raise JoinError("frames with CRC are not handled")
    return 72 * bitrate * 1000 // _RATES[version][rate_index] + ((header[2] >> 1) & 1)


def block_type(frame: bytes) -> int:
    """The frame's window: 0 long, 1 start, 2 short, 3 stop (side info of one granule)."""
    bits = int.from_bytes(frame[4 : 4 + _SIDE_INFO], "big")
    # main_data_begin 8, private 1, part2_3_length 12, big_values 9, global_gain 8,
    # scalefac_compress 9: the window switching flag is bit 47 from the start.
    width = 8 * _SIDE_INFO
    if not (bits >> (width - 48)) & 1:
        return 0
    return (bits >> (width - 50)) & 3


def may_follow(previous: int, following: int) -> bool:
    """Whether a granule with window `following` may come after one with `previous`."""
    if previous in (0, 3):  # long or stop: long or start next
        return following in (0, 1)
    return following in (2, 3)  # start or short: short or stop next


def frame_offsets(path: Path, start: int, limit: int | None = None) -> list[int]:
    """Byte offsets of the frames from `start` to the end (at most `limit` of them)."""
    offsets: list[int] = []
    size = os.path.getsize(path)
    if start >= size:
        return offsets
    count = size if limit is None else limit
    with open(path, "rb") as stream:
        # Read a MiB at a time (not mapped: a mapped 2 h file counts whole in the
        # process's memory), headers taken from it by offset.
        stream.seek(start)
        data, base = stream.read(_READ), start
        first = data[:4]
        if len(first) < 4:
            raise JoinError(f"{path.name}: cut short inside a frame header")
        # A CBR encode's headers differ only in the padding bit (0x200 of the word):
        # a header that matches the first's is read with a mask, any other in full.
        unpadded = bytes([first[0], first[1], first[2] & 0xFD, first[3]])
        base_length = frame_length(unpadded)
        pattern = int.from_bytes(unpadded, "big")
        at, end = start, start + len(data) - 4  # headers at or before `end` are in `data`
        word_at = _WORD.unpack_from
        while at < size and len(offsets) < count:
            if at > end:
                stream.seek(at)
                data, base = stream.read(_READ), at
                end = base + len(data) - 4
                if at > end:
                    raise JoinError(f"{path.name}: cut short inside a frame header")
            word = word_at(data, at - base)[0]
            if word & ~0x200 == pattern:
                length = base_length + ((word >> 9) & 1)
            else:
                length = frame_length(data[at - base : at - base + 4])
            offsets.append(at)
            at += length
        if at > size:
            raise JoinError(f"{path.name}: its last frame is cut short")
    return offsets


def audio_start(path: Path) -> int:
    """Where the first frame starts: after an ID3v2 tag, if the file has one."""
    with open(path, "rb") as stream:
        head = stream.read(10)
    if head[:3] == b"ID3" and len(head) == 10:
        size = 0
        for byte in head[6:10]:
            size = (size << 7) | (byte & 0x7F)
        return 10 + size + (10 if head[5] & 0x10 else 0)  # a footer, when flagged
    return 0


# -- the LAME Info frame -----------------------------------------------------


@dataclass
class Info:
    """The Info frame ffmpeg writes first in a CBR MP3 (fields the join needs)."""

    offset: int  # of the frame in the file
    frame: bytearray  # its bytes
    frames: int  # audio frames after it
    music_crc: int
    delay: int  # encoder delay (samples)

    @classmethod
    def read(cls, path: Path) -> Info:
        offset = audio_start(path)
        with open(path, "rb") as stream:
            stream.seek(offset)
            header = stream.read(4)
            frame = bytearray(header + stream.read(frame_length(header) - 4))
        tag = 4 + _SIDE_INFO
        if bytes(frame[tag : tag + 4]) != b"Info" or len(frame) < _CRC_SPAN:
            raise JoinError(f"{path.name}: no Info frame first")
        if int.from_bytes(frame[tag + 4 : tag + 8], "big") & 0x0F != 0x0F:
            raise JoinError(f"{path.name}: its Info frame lacks a field")
        delay_padding = int.from_bytes(frame[tag + 141 : tag + 144], "big")
        return cls(
            offset=offset,
            frame=frame,
            frames=int.from_bytes(frame[tag + 8 : tag + 12], "big"),
            music_crc=int.from_bytes(frame[tag + _TAG - 4 : tag + _TAG - 2], "big"),
            delay=delay_padding >> 12,
        )

    @property
    def padding(self) -> int:
        tag = 4 + _SIDE_INFO
        return int.from_bytes(self.frame[tag + 141 : tag + 144], "big") & 0xFFF

    def rewritten(self, *, frames: int, size: int, toc: Sequence[int], padding: int, crc: int):
        """The frame with new counts, seek table, padding and CRCs (its length unchanged)."""
        tag = 4 + _SIDE_INFO
        frame = bytearray(self.frame)
        frame[tag + 8 : tag + 12] = frames.to_bytes(4, "big")
        frame[tag + 12 : tag + 16] = size.to_bytes(4, "big")
        frame[tag + 16 : tag + 16 + _TOC] = bytes(toc)
        frame[tag + _TAG - 8 : tag + _TAG - 4] = size.to_bytes(4, "big")  # music length
        frame[tag + _TAG - 4 : tag + _TAG - 2] = crc.to_bytes(2, "big")
        return _with_padding(frame, self.delay, padding)


def _with_padding(frame: bytearray, delay: int, padding: int) -> bytearray:
    """The Info frame with this encoder padding, and its tag CRC to match."""
    if not 0 <= padding < 1 << 12:
        raise JoinError(f"padding of {padding} samples does not fit the LAME tag")
    tag = 4 + _SIDE_INFO
    frame = bytearray(frame)
    frame[tag + 141 : tag + 144] = ((delay << 12) | padding).to_bytes(3, "big")
    frame[tag + _TAG - 2 : tag + _TAG] = b"\0\0"  # counted as zeros, as ffmpeg does
    frame[tag + _TAG - 2 : tag + _TAG] = crc16(bytes(frame[:_CRC_SPAN])).to_bytes(2, "big")
    return frame


def set_length(path: Path, samples: int) -> bool:
    """Make a gapless decoder give exactly `samples` (the padding in the LAME tag).

    ffmpeg works the padding out from its last packet, and for some lengths it
    counts a frame LAME flushed short (~40 samples too many decoded). Returns
    whether the tag changed; JoinError when the file has no tag this can mend.
    """
    info = Info.read(path)
    padding = info.frames * FRAME - info.delay - samples
    if padding == info.padding:
        return False
    frame = _with_padding(info.frame, info.delay, padding)
    with open(path, "r+b") as out:
        out.seek(info.offset)
        out.write(frame)
    return True


# -- CRC-16 (the LAME tag's: polynomial 0x8005, reflected, starting at 0) --------


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _table()
# Appending n zero bytes maps the CRC state by a fixed linear map Z^n; Z has order
# 32767 (x^15 + x + 1 is primitive), so Z^-n is Z^(32767 - n mod 32767).
ZERO_ORDER = 32767


def crc16(data: bytes, crc: int = 0) -> int:
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def _apply(columns: Sequence[int], value: int) -> int:
    out = 0
    for bit in range(16):
        if value >> bit & 1:
            out ^= columns[bit]
    return out


def zero_shift(crc: int, count: int) -> int:
    """The CRC state after `count` more zero bytes (count may be negative: before them)."""
    count %= ZERO_ORDER
    step = [crc16(b"\0", 1 << bit) for bit in range(16)]  # Z's columns
    while count:
        if count & 1:
            crc = _apply(step, crc)
        step = [_apply(step, column) for column in step]
        count >>= 1
    return crc


def joined_crc(first: int, second: int, second_bytes: int) -> int:
    """The CRC of A + B from A's and B's (CRC-16 from 0 is linear)."""
    return zero_shift(first, second_bytes) ^ second


def _file_crc(path: Path, start: int, end: int) -> int:
    with open(path, "rb") as stream:
        stream.seek(start)
        return crc16(stream.read(end - start))


# -- the join -------------------------------------------------------------------


def join(first: Path, second: Path, *, offset_frames: int, cuts: range, samples: int) -> int:
    """Append `second`'s frames to `first` (in place) at the first cut whose windows fit.

    `second`'s encoder began `offset_frames` frames into the session, so its
    frame j is the session's frame j + offset_frames. The cut (the session's
    first frame taken from `second`) is tried in `cuts`, nearest its middle
    first. `samples`: the session's length, for the padding a gapless player
    trims. Returns the cut. JoinError (the file left as it was) when no cut fits.
    """
    head, tail = Info.read(first), Info.read(second)
    if head.delay != tail.delay:
        raise JoinError("the two encodes have different delays")
    # The frames each file has around the cuts (offsets relative to the file).
    first_offsets = frame_offsets(first, head.offset + len(head.frame))
    second_start = tail.offset + len(tail.frame)
    second_offsets = frame_offsets(second, second_start)
    if len(first_offsets) != head.frames or len(second_offsets) != tail.frames:
        raise JoinError("an Info frame's count disagrees with the frames")
    middle = cuts.start + len(cuts) // 2
    chosen = None
    with open(first, "rb") as a, open(second, "rb") as b:
        for cut in sorted(cuts, key=lambda c: (abs(c - middle), c)):
            j = cut - offset_frames
            if not (1 <= cut <= len(first_offsets) and 0 <= j < len(second_offsets)):
                continue
            a.seek(first_offsets[cut - 1])
            b.seek(second_offsets[j])
            before, after = a.read(4 + _SIDE_INFO), b.read(4 + _SIDE_INFO)
            if after[4] != 0:  # main_data_begin: bits in frames that are not there
                raise JoinError("the second encode uses a bit reservoir")
            if may_follow(block_type(before), block_type(after)):
                chosen = cut
                break
    if chosen is None:
        raise JoinError("no cut between frames whose windows fit")
    j = chosen - offset_frames
    cut_at = first_offsets[chosen] if chosen < len(first_offsets) else os.path.getsize(first)
    take_from = second_offsets[j]
    first_end, second_end = os.path.getsize(first), os.path.getsize(second)
    # Music CRCs: the first file's without its frames after the cut, the second's
    # without its frames before it.
    first_tail = first_end - cut_at
    kept_first = zero_shift(
        head.music_crc ^ _file_crc(first, cut_at, first_end), -first_tail
    )
    kept_second_bytes = second_end - take_from
    kept_second = tail.music_crc ^ zero_shift(
        _file_crc(second, second_start, take_from), kept_second_bytes
    )
    music_crc = joined_crc(kept_first, kept_second, kept_second_bytes)
    frames = chosen + (len(second_offsets) - j)
    padding = frames * FRAME - head.delay - samples
    size = len(head.frame) + (cut_at - first_offsets[0]) + kept_second_bytes  # from the Info frame
    # Seek table: where each hundredth of the frames starts, in 256ths of the size.
    def position(frame: int) -> int:
        if frame < chosen:
            return first_offsets[frame] - head.offset
        return cut_at - head.offset + second_offsets[frame - chosen + j] - take_from

    toc = [0] + [
        min(255, 256 * position(i * frames // _TOC) // size) for i in range(1, _TOC)
    ]
    frame = head.rewritten(frames=frames, size=size, toc=toc, padding=padding, crc=music_crc)
    with open(first, "r+b") as out, open(second, "rb") as source:
        out.truncate(cut_at)
        out.seek(cut_at)
        source.seek(take_from)
        while chunk := source.read(1 << 20):
            out.write(chunk)
        out.seek(head.offset)
        out.write(frame)
    return chosen
