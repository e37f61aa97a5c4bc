"""Small stand-ins for fast unit tests. Real engines are tested elsewhere.

FakeSpeech gives every text a deterministic length and a voiced signal, so
planning and rendering can be checked without synthesis. Never the only test
of a feature: tests/test_tts_*.py and the end-to-end tests use real eSpeak NG.
"""

from __future__ import annotations

import zlib

import numpy as np

from prtvoice.script import SoundRef, VoiceSettings


class FakeSpeech:
    """Speech of 0.3 s plus 60 ms a character, at `rate`; counts what it is asked."""

    def __init__(self, sample_rate: int = 44100):
        self.sample_rate = sample_rate
        self.asked: list[str] = []
        self.prefetched: list[tuple[str, VoiceSettings, str]] = []

    def frames(self, text: str, voice: VoiceSettings, language: str) -> int:
        self.asked.append(text)
        return round((0.3 + 0.06 * len(text)) / voice.rate * self.sample_rate)

    def known_frames(self, text: str, voice: VoiceSettings, language: str) -> int | None:
        return self.frames(text, voice, language)

    def clip(self, text: str, voice: VoiceSettings, language: str) -> np.ndarray:
        n = self.frames(text, voice, language)
        t = np.arange(n) / self.sample_rate
        f0 = 110 + zlib.crc32(text.encode()) % 90
        signal = 0.4 * np.sin(2 * np.pi * f0 * t) + 0.2 * np.sin(2 * np.pi * 2 * f0 * t)
        edge = min(n // 2, int(0.01 * self.sample_rate))
        if edge:
            ramp = np.linspace(0, 1, edge)
            signal[:edge] *= ramp
            signal[-edge:] *= ramp[::-1]
        return (signal * volume_of(voice)).astype(np.float32).reshape(-1, 1)

    def prefetch(self, requests) -> None:
        self.prefetched.extend(requests)

    def close(self) -> None:
        pass


def volume_of(voice: VoiceSettings) -> float:
    return voice.volume


class FakeSounds:
    """Every cue sound lasts 2 s (files 1 s)."""

    def __init__(self, sample_rate: int = 44100):
        self.sample_rate = sample_rate

    def frames(self, ref: SoundRef) -> int:
        return (2 if ref.builtin else 1) * self.sample_rate
