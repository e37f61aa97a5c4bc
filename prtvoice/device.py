"""The PortAudio edge: loading sounddevice and listing output devices.

Kept apart from `player` (and free of numpy) so that `play` can start loading
PortAudio first thing: its initialisation (~60 ms of ALSA and sound-server
set-up, in C) then runs on a thread while the script loads and numpy imports.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from prtvoice.errors import AudioDeviceError


def import_sounddevice():
    """sounddevice, or AudioDeviceError when the PortAudio library is missing."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio is absent
        raise AudioDeviceError(
            "the PortAudio library is missing, so prtvoice cannot play sound: install it "
            "(apt install libportaudio2), or make a file with `prtvoice export`"
        ) from exc
    return sounddevice


def warm_up() -> threading.Thread:
    """Load PortAudio in the background, so a caller can do other start-up work
    meanwhile. Errors surface later, when it is used. Returns the (daemon) thread."""

    def load() -> None:
        with contextlib.suppress(Exception):  # the real use reports it properly
            import sounddevice  # noqa: F401

    thread = threading.Thread(target=load, name="prtvoice-portaudio", daemon=True)
    thread.start()
    return thread


def list_output_devices() -> list[dict[str, Any]]:
    """Output devices as sounddevice describes them, each with `index` and `default`."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        default = sd.default.device[1]
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"could not list audio devices: {exc}") from exc
    found = []
    for index, info in enumerate(devices):
        if info["max_output_channels"] > 0:
            found.append({**info, "index": index, "default": index == default})
    return found


def device_hint() -> str:
    """What a listener can do when the output device fails."""
    return (
        "check the device with `prtvoice play --list-devices`, start the sound server "
        "(e.g. `pulseaudio --start`), or make a file with `prtvoice export`"
    )
