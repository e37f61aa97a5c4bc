"""The PortAudio edge: loading sounddevice, listing devices, calls with deadlines.

Kept apart from `player` (and free of numpy) so that `play` can start loading
PortAudio on a thread while it sets the session up. Every call into PortAudio
goes through `call`, with a deadline: a sound server that stops answering
blocks PortAudio for good, and a listener must get an error, not a hang.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from prtvoice.errors import AudioDeviceError

# How long one PortAudio call (initialising, opening, starting, stopping) may
# take: they normally return in milliseconds, but a sound server that stops
# answering (frozen, or gone at the wrong instant) blocks them for good.
CALL_SECONDS = 10.0
STOP_SECONDS = 3.0  # stopping or closing a stream, when something went wrong already

_hung = threading.Event()
_warming: threading.Thread | None = None
_saved_stderr: int | None = None  # a copy of fd 2 from before PortAudio was loaded
T = TypeVar("T")


def hung() -> bool:
    """True once a PortAudio call did not return in time: PortAudio may be stuck for good,
    so nothing may call it again (its own exit handler included)."""
    return _hung.is_set()


def call(what: str, function: Callable[..., T], *args: Any, timeout: float | None = None,
         **kwargs: Any) -> T:  # fmt: skip
    """`function(*args, **kwargs)` on a daemon thread; AudioDeviceError if it has not
    returned within `timeout` seconds (default CALL_SECONDS; PortAudio then counts as
    hung: see `hung`)."""
    timeout = CALL_SECONDS if timeout is None else timeout
    if _hung.is_set():
        raise AudioDeviceError(f"the audio device stopped answering earlier: {device_hint()}")
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = function(*args, **kwargs)
        except BaseException as exc:  # raised again in the caller's thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name=f"prtvoice-portaudio-{what}", daemon=True).start()
    if not done.wait(timeout):
        _hung.set()
        _give_stderr_back()
        raise AudioDeviceError(
            f"the audio device did not answer ({what} took over {timeout:g} s; is the sound "
            f"server frozen?): {device_hint()}"
        )
    if "error" in box:
        raise box["error"]
    return box["value"]


def import_sounddevice():
    """sounddevice, or AudioDeviceError when the PortAudio library is missing or hangs."""

    def load():
        import sounddevice

        return sounddevice

    _keep_stderr()
    try:
        return call("loading PortAudio", load)
    except OSError as exc:  # sounddevice raises OSError when libportaudio is absent
        raise AudioDeviceError(
            "the PortAudio library is missing, so prtvoice cannot play sound: install it "
            "(apt install libportaudio2), or make a file with `prtvoice export`"
        ) from exc


def warm_up() -> threading.Thread:
    """Load PortAudio in the background, so a caller can do other start-up work
    meanwhile. Errors surface later, when it is used. Returns the (daemon) thread.

    While PortAudio initialises, sounddevice points the whole process's stderr
    at /dev/null (to silence ALSA's chatter), and leaving the process then can
    crash it: a caller that may stop early (an error, a bad script) calls
    `settle()` before it prints or leaves.
    """
    global _warming
    if _warming is not None:  # started already (a split start's parent preloads)
        return _warming

    def load() -> None:
        with contextlib.suppress(Exception):  # the real use reports it properly
            import sounddevice  # noqa: F401

    _keep_stderr()
    thread = threading.Thread(target=load, name="prtvoice-portaudio", daemon=True)
    thread.start()
    _warming = thread
    return thread


def settle(timeout: float | None = None) -> None:
    """Wait until a `warm_up` has loaded PortAudio (at most `timeout` s, CALL_SECONDS by
    default; then it counts as hung), and give stderr back if it hung while silenced."""
    timeout = CALL_SECONDS if timeout is None else timeout
    thread = _warming
    if thread is not None and thread.is_alive() and not _hung.is_set():
        thread.join(timeout)
        if thread.is_alive():
            _hung.set()
    if _hung.is_set():
        _give_stderr_back()


def _keep_stderr() -> None:
    """Keep a copy of fd 2 before PortAudio loads: sounddevice points fd 2 at
    /dev/null while PortAudio initialises, and puts it back only if that returns."""
    global _saved_stderr
    if _saved_stderr is None:
        with contextlib.suppress(OSError):
            _saved_stderr = os.dup(2)


def _give_stderr_back() -> None:
    if _saved_stderr is not None:
        with contextlib.suppress(OSError):
            os.dup2(_saved_stderr, 2)


def list_output_devices() -> list[dict[str, Any]]:
    """Output devices as sounddevice describes them, each with `index` and `default`."""
    sd = import_sounddevice()
    try:
        devices = call("listing devices", sd.query_devices)
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
