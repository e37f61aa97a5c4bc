"""The sound bank: cue sounds, breathing tones and ambience beds, built-in or from files.

Every array it hands out follows the audio contract: float32, shape
(frames, 1), values in -1..1, at the bank's `sample_rate`. Built-in sounds are
generated (prtvoice.synth) once per bank and kept; files are decoded with
ffmpeg and resampled with soxr (prtvoice.decode) once per bank and kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from prtvoice import synth
from prtvoice.decode import decode_file
from prtvoice.errors import SoundError
from prtvoice.names import AMBIENCE_BEDS, CUE_SOUNDS
from prtvoice.script import SoundRef

MAX_FILE_SECONDS = 600.0  # a sound file longer than this is refused, not read
FILE_PEAK = 0.89  # -1 dBFS: a loud recording is turned down to this, never up
FILE_EDGE_SECONDS = 0.005  # fades on file sounds: recordings rarely start on a zero
BED_AS_CUE_SECONDS = 8.0  # `sound: pink-noise` plays this much of the bed
BED_AS_CUE_GAIN = 0.5  # at -6 dB under a bed's standard level
_TONE_CACHE = 8  # breath-tone chunks kept (a breathing block reuses a few lengths)


class Bed:
    """An ambience bed: a seamless loop read at any absolute position.

    `block(start, frames)` is a pure function of its arguments: the same
    position always gives the same samples, whatever was asked before, and a
    session of any length just keeps going round the loop. No fades here: the
    renderer fades the session's start and end.
    """

    def __init__(self, loop: np.ndarray, *, name: str):
        if loop.ndim != 1 or len(loop) == 0:
            raise ValueError("a bed loop is a non-empty 1-D array")
        self.name = name
        self._loop = np.ascontiguousarray(loop, dtype=np.float32)
        self._loop.setflags(write=False)

    @property
    def loop_frames(self) -> int:
        return len(self._loop)

    def block(self, start: int, frames: int) -> np.ndarray:
        """Samples [start, start + frames) of the endless loop: float32 (frames, 1)."""
        if start < 0 or frames < 0:
            raise ValueError("bed positions are non-negative")
        loop = self._loop
        size = len(loop)
        out = np.empty((frames, 1), dtype=np.float32)
        done = 0
        at = start % size
        while done < frames:  # a few slices per block, not a per-sample loop
            take = min(frames - done, size - at)
            out[done : done + take, 0] = loop[at : at + take]
            done += take
            at = 0
        return out


class SoundBank:
    """Built-in and file sounds at one sample rate, generated or decoded once each.

    Safe to share between a rendering thread and a planning thread: the caches
    are guarded by a lock (generation is deterministic, so a race could only
    waste work, but a lock keeps it simple).
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        seed: int = 0,
        max_file_seconds: float = MAX_FILE_SECONDS,
    ):
        self.sample_rate = sample_rate
        self.seed = seed
        self.max_file_seconds = max_file_seconds
        self._clips: dict[SoundRef, np.ndarray] = {}
        self._beds: dict[SoundRef, Bed] = {}
        self._tones: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()
        self._lock = threading.RLock()

    # -- cue sounds ---------------------------------------------------------

    def frames(self, ref: SoundRef) -> int:
        """Exactly len(self.clip(ref)) (the planner places the next step after it)."""
        return len(self.clip(ref))

    def clip(self, ref: SoundRef) -> np.ndarray:
        """The sound played by a `sound:` step: float32 (frames, 1), starting and ending
        at (or within a few ms fade of) silence. SoundError for an unknown name or a
        file that cannot be read."""
        with self._lock:
            found = self._clips.get(ref)
            if found is None:
                found = self._make_clip(ref)
                found.setflags(write=False)
                self._clips[ref] = found
            return found

    def _make_clip(self, ref: SoundRef) -> np.ndarray:
        sr = self.sample_rate
        if ref.path is not None:
            samples = self._decode(ref.path)
            edge = round(FILE_EDGE_SECONDS * sr)
            samples = synth.fade_edges(_limit(samples), fade_in=edge, fade_out=edge)
        elif ref.name in CUE_SOUNDS:
            samples = synth.bell(ref.name, sample_rate=sr)
        elif ref.name in AMBIENCE_BEDS:
            # A bed used as a cue: a few seconds of it, faded in and out.
            part = self.bed(ref).block(0, round(BED_AS_CUE_SECONDS * sr))[:, 0]
            fade = round(1.0 * sr)
            samples = synth.fade_edges(part * BED_AS_CUE_GAIN, fade_in=fade, fade_out=fade)
        else:
            raise SoundError(_unknown(ref.name))
        return samples.astype(np.float32).reshape(-1, 1)

    # -- breathing tones ------------------------------------------------------

    def breath_tone(self, kind: str, frames: int) -> np.ndarray:
        """The cue tone of a whole `frames`-long inhale or exhale: float32 (frames, 1),
        rising in pitch through an inhale, falling through an exhale, silent at both ends.
        Identical, sample for sample, to what the renderer plays for that phase."""
        parts = [
            self.breath_tone_chunk(kind, frames, index)
            for index in range(-(-frames // synth.TONE_CHUNK))
        ]
        if not parts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.concatenate(parts).reshape(-1, 1)

    def breath_tone_chunk(self, kind: str, frames: int, index: int) -> np.ndarray:
        """Chunk `index` (of synth.TONE_CHUNK frames; the last may be shorter) of the
        tone of a `frames`-long phase, as float32 (n,). Computed on a fixed grid so the
        samples never depend on how a caller splits its blocks."""
        key = (kind, frames, index)
        with self._lock:
            found = self._tones.get(key)
            if found is not None:
                self._tones.move_to_end(key)
                return found
        chunk = synth.breath_tone(
            kind,
            frames,
            sample_rate=self.sample_rate,
            offset=index * synth.TONE_CHUNK,
            count=synth.TONE_CHUNK,
        )
        chunk.setflags(write=False)
        with self._lock:
            self._tones[key] = chunk
            while len(self._tones) > _TONE_CACHE:
                self._tones.popitem(last=False)
        return chunk

    # -- ambience -----------------------------------------------------------------

    def bed(self, ref: SoundRef) -> Bed:
        """The ambience loop for `ref`, normalised to synth.BED_LUFS so that a script's
        `ambience.level` means the same for every bed. A file is crossfaded into a
        seamless loop; a built-in cue sound loops as it is (it starts and ends silent)."""
        with self._lock:
            found = self._beds.get(ref)
            if found is None:
                found = self._make_bed(ref)
                self._beds[ref] = found
            return found

    def _make_bed(self, ref: SoundRef) -> Bed:
        sr = self.sample_rate
        if ref.path is not None:
            loop = synth.crossfade_loop(self._decode(ref.path), sample_rate=sr)
        elif ref.name in AMBIENCE_BEDS:
            loop = synth.bed_loop(ref.name, sample_rate=sr, seed=self.seed)
        elif ref.name in CUE_SOUNDS:
            loop = self.clip(ref)[:, 0]
        else:
            raise SoundError(_unknown(ref.name))
        return Bed(synth.normalise_bed(loop, sample_rate=sr), name=ref.name)

    def _decode(self, path: Path) -> np.ndarray:
        return decode_file(path, sample_rate=self.sample_rate, max_seconds=self.max_file_seconds)[
            :, 0
        ]


def _limit(samples: np.ndarray) -> np.ndarray:
    """Turn a recording down to FILE_PEAK if it peaks above it; never turn it up."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak > FILE_PEAK:
        return samples * np.float32(FILE_PEAK / peak)
    return samples


def _unknown(name: str) -> str:
    import difflib

    known = CUE_SOUNDS + AMBIENCE_BEDS
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown built-in sound {name!r}{hint}; built-in sounds: {', '.join(known)}"
