"""The one options object passed through the core (like black's Mode).

Vary it with ``dataclasses.replace``; never pass loose audio settings around.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

SAMPLE_RATE = 44100  # eSpeak NG speaks at 22050 Hz: an exact 2x, and every player takes 44.1 kHz
# Exports are made at eSpeak NG's own rate: half the samples to render, measure and
# encode, no resampling of speech, and MP3 (MPEG-2 Layer III), AAC, FLAC and WAV at
# 22.05 kHz play everywhere (Opus resamples to its own 48 kHz in ffmpeg).
EXPORT_SAMPLE_RATE = 22050


@dataclass(frozen=True)
class Options:
    """Everything that shapes the sound and the files, with safe defaults."""

    sample_rate: int = SAMPLE_RATE
    channels: int = 1  # speech guidance is mono; the contract still holds (frames, channels)
    block_frames: int = 8192  # render block: about 0.19 s at 44.1 kHz
    engine: str = "pyttsx3"  # "pyttsx3" or "command" (a user-configured command line)
    voice: str | None = None  # user's default voice (id or name substring); a script's wins
    rate: float = 1.0  # multiplies every script's rate (a listener who wants it slower)
    loudness_lufs: float = -16.0  # integrated loudness of exports (BS.1770)
    true_peak_db: float = -1.0  # ceiling for exports, dBTP
    duck_db: float = 6.0  # how far ambience dips under speech
    ambience: str | None = None  # override the script's bed: a sound name, or "off"
    fade_seconds: float = 3.0  # ambience fade at session start and end
    format: str = "mp3"
    bitrate: str | None = None  # None: the format's calm-speech default
    artist: str = "prtvoice"
    album: str = "prtvoice"
    seed: int = 0  # noise seed: the same plan renders to the same samples
    export_sample_rate: int = EXPORT_SAMPLE_RATE  # the rate `for_export()` switches to

    def for_export(self) -> Options:
        """These options at `export_sample_rate`: what `export` plans and renders with."""
        return replace(self, sample_rate=self.export_sample_rate)

    def frames(self, seconds: float) -> int:
        """Seconds to a whole number of frames at this rate (round half to even)."""
        return round(seconds * self.sample_rate)
