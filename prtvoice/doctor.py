"""`prtvoice doctor`: what works on this machine, and how to fix what does not.

Returns data only (a list of Check); the CLI prints it. A check is
`required` when exporting needs it (TTS, ffmpeg and its encoders, the cache);
PortAudio and an output device are needed only to play live, so their
absence is a warning: `prtvoice export` still makes files to play elsewhere.
"""

from __future__ import annotations

import ctypes.util
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prtvoice import paths
from prtvoice.errors import PrtvoiceError


@dataclass(frozen=True)
class Check:
    """One thing checked: `ok`, what was found (`detail`) and, if not ok, how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    required: bool = True  # False: only live playback needs it (a warning, not a failure)


def export_ready(checks: list[Check]) -> bool:
    """True when every check that exporting needs passed (exit status 0)."""
    return all(c.ok for c in checks if c.required)


def _guard(name: str, required: bool, run: Callable[[], Check]) -> Check:
    try:
        return run()
    except PrtvoiceError as exc:
        return Check(name, False, str(exc), _FIXES.get(name), required)
    except Exception as exc:  # a doctor reports every failure instead of crashing
        return Check(name, False, f"{type(exc).__name__}: {exc}", _FIXES.get(name), required)


_FIXES = {
    "text-to-speech": "pip install pyttsx3 espeakng-loader (or: apt install espeak-ng)",
    "ffmpeg": "apt install ffmpeg, or pip install imageio-ffmpeg",
    "portaudio": "apt install libportaudio2 (needed only to play live; "
    "use `prtvoice export` to make a file instead)",
    "output device": "connect or enable a sound device (or start PulseAudio / PipeWire); "
    "without one, use `prtvoice export` and play the file elsewhere",
    "cache folder": "make it writable, or set PRTVOICE_CACHE to a writable folder",
    "config file": "fix the YAML in the config file, or delete it to use the defaults",
}


def check_tts() -> Check:
    """Speak a word with the default voice, through the same path a session uses."""
    from prtvoice.config import load_config
    from prtvoice.names import DEFAULT_LANGUAGE
    from prtvoice.options import Options
    from prtvoice.script import VoiceSettings
    from prtvoice.tts import VoiceBank, make_engine

    engine = make_engine(load_config())
    describe = getattr(engine, "describe", None)
    with tempfile.TemporaryDirectory(prefix="prtvoice-doctor-") as scratch:
        bank = VoiceBank(
            engine=engine, cache_dir=Path(scratch), sample_rate=Options().sample_rate, jobs=1
        )
        try:
            voices = bank.voices()
            if not voices:
                return Check(
                    "text-to-speech",
                    False,
                    f"{engine.version}: no voices",
                    _FIXES["text-to-speech"],
                )
            voice_id = bank.resolve(VoiceSettings(), DEFAULT_LANGUAGE)
            frames = len(bank.clip("Hello.", VoiceSettings(), DEFAULT_LANGUAGE))
            detail = describe() if describe else engine.version
        finally:
            bank.close()
    seconds = frames / Options().sample_rate
    return Check(
        "text-to-speech",
        True,
        f"{detail}; {len(voices)} voices; the default voice {voice_id} speaks ({seconds:.1f} s)",
    )


def check_ffmpeg() -> list[Check]:
    from prtvoice.encode import FORMATS, available_encoders, ffmpeg_version
    from prtvoice.ffmpeg import find_ffmpeg

    ffmpeg = find_ffmpeg()
    version = ffmpeg_version(ffmpeg)
    checks = [Check("ffmpeg", True, f"{ffmpeg} ({version})")]
    have = available_encoders(ffmpeg)
    for fmt in FORMATS.values():
        found = [e for e in fmt.encoders if e in have]
        if found:
            checks.append(Check(f"encoder {fmt.name}", True, found[0]))
        else:
            checks.append(
                Check(
                    f"encoder {fmt.name}",
                    False,
                    f"no {' or '.join(fmt.encoders)} in this ffmpeg",
                    "install a full ffmpeg (apt install ffmpeg) or export another --format",
                    required=fmt.name == "mp3",
                )
            )
    return checks


def check_portaudio() -> list[Check]:
    library = ctypes.util.find_library("portaudio")
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when PortAudio is missing
        return [
            Check(
                "portaudio",
                False,
                f"sounddevice cannot load PortAudio: {exc}",
                _FIXES["portaudio"],
                required=False,
            )
        ]
    version = sounddevice.get_portaudio_version()[1]
    checks = [
        Check(
            "portaudio",
            True,
            f"{version} ({library or 'bundled with sounddevice'})",
            required=False,
        )
    ]
    try:
        device = sounddevice.query_devices(kind="output")
        checks.append(
            Check(
                "output device",
                True,
                f"{device['name']} ({device['max_output_channels']} channels, "
                f"{device['default_samplerate']:g} Hz)",
                required=False,
            )
        )
    except Exception as exc:  # PortAudioError / ValueError when there is none
        checks.append(
            Check(
                "output device",
                False,
                f"no default output device ({exc})",
                _FIXES["output device"],
                required=False,
            )
        )
    return checks


def check_cache() -> Check:
    folder = paths.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
        pass  # raises OSError when the folder is not writable
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return Check("cache folder", True, f"{folder} (writable, {size / 1e6:.1f} MB)")


def check_config() -> Check:
    path = paths.config_path()
    if not path.exists():
        return Check("config file", True, f"{path} (none: using the defaults)")
    from prtvoice.config import load_config

    load_config()
    return Check("config file", True, f"{path} (loads)")


def run_checks(*, tts: bool = True) -> list[Check]:
    """Every check, in the order the CLI shows them."""
    checks: list[Check] = []
    if tts:
        checks.append(_guard("text-to-speech", True, check_tts))
    try:
        checks += check_ffmpeg()
    except Exception as exc:
        checks.append(Check("ffmpeg", False, str(exc), _FIXES["ffmpeg"]))
    try:
        checks += check_portaudio()
    except Exception as exc:
        checks.append(Check("portaudio", False, str(exc), _FIXES["portaudio"], required=False))
    checks.append(_guard("cache folder", True, check_cache))
    checks.append(_guard("config file", True, check_config))
    return checks
