"""Real eSpeak NG speech for export tests, through the espeak-ng command line.

A stand-in for the VoiceBank that still speaks with the real engine (the
level and peakiness of eSpeak's voice are what loudness normalisation is
about), plus plans built straight from Script objects and decoding with ffmpeg.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import scipy.io.wavfile
import soxr

from prtvoice.ffmpeg import find_ffmpeg
from prtvoice.options import Options
from prtvoice.plan import Plan, plan_script
from prtvoice.script import (
    Breathe,
    Location,
    Pause,
    Say,
    Script,
    Section,
    Sound,
    SoundRef,
    VoiceSettings,
)

HERE = Location(Path("session.yaml"), 1, 1)
VOICE = VoiceSettings()


class EspeakVoices:
    """voices.frames/clip from `espeak-ng -w`, resampled 22050 -> 44100 with soxr."""

    def __init__(self, cache: Path, sample_rate: int = 44100):
        self.cache = cache
        self.sample_rate = sample_rate
        self._clips: dict[str, np.ndarray] = {}

    def clip(self, text: str, voice: VoiceSettings, language: str) -> np.ndarray:
        key = hashlib.sha1(f"{text}|{voice.rate}|{language}".encode()).hexdigest()[:16]
        if key not in self._clips:
            wav = self.cache / f"{key}.wav"
            if not wav.exists():
                speed = str(round(160 * voice.rate))
                subprocess.run(
                    ["espeak-ng", "-v", language, "-s", speed, "-w", str(wav), text],
                    check=True,
                    capture_output=True,
                )
            rate, data = scipy.io.wavfile.read(wav)
            samples = data.astype(np.float32) / 32768.0 * voice.volume
            samples = soxr.resample(samples, rate, self.sample_rate).astype(np.float32)
            self._clips[key] = samples.reshape(-1, 1)
        return self._clips[key]

    def frames(self, text: str, voice: VoiceSettings, language: str) -> int:
        return len(self.clip(text, voice, language))

    def prefetch(self, requests) -> None:
        for text, voice, language in requests:
            self.clip(text, voice, language)


def session_script(
    sections: int = 2, *, title: str = "Calm test session", sid: str = "calm-test"
) -> Script:
    """A small but complete session: bell, speech, long pauses, a breathing tone block."""
    parts = []
    for number in range(1, sections + 1):
        steps = (
            Sound(SoundRef("soft-bell"), HERE),
            Say(
                f"Part {number}. Find a comfortable position, and let your shoulders soften.",
                VOICE,
                HERE,
            ),
            Pause(4.0, True, HERE),
            Say("Notice the breath moving in, and moving out. Nothing to fix.", VOICE, HERE),
            Breathe(2.0, 0.0, 3.0, 0.0, 1, "tone", VOICE, HERE),
            Pause(3.0, False, HERE),
        )
        parts.append(Section(f"Part {number}: settling", steps, HERE))
    return Script(
        path=Path("session.yaml"),
        id=sid,
        title=title,
        kind="mindfulness",
        summary="A test",
        language="en",
        duration=None,
        voice=VOICE,
        ambience=None,
        variables={},
        sections=tuple(parts),
        where=HERE,
    )


def make_plan(script: Script, voices, sounds, options: Options) -> Plan:
    return plan_script(script, options=options, speech=voices, sounds=sounds)


def decode(path: Path, *, sample_rate: int = 44100) -> np.ndarray:
    """Any file ffmpeg reads, as mono float32 at `sample_rate` (1-D)."""
    out = subprocess.run(
        [
            find_ffmpeg(),
            "-v",
            "error",
            "-i",
            str(path),
            "-f",
            "f32le",
            "-ac",
            "1",
            "-ar",
            str(sample_rate),
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(out, dtype="<f4")


def ffprobe(path: Path, *args: str) -> dict:
    import json

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)
