"""The command line's side of `prtvoice play`: from a checked request to a session heard.

`cli.play` checks the arguments and reads the script (`prepare`, no numpy
needed), then `run` plays it: it loads the audio side, drives the player with
single keys, draws the status line and turns signals into a gentle stop. It is
part of the command line (it prints and sets exit statuses) but free of typer,
so that the process that plays need not import it: see `prtvoice.launch`,
which runs `prepare` in a forked child while the parent loads the audio side,
and hands the request over with `hand_off`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prtvoice import blas
from prtvoice.cli_common import say
from prtvoice.errors import ExitStatus, PrtvoiceError

# Set in the child of a split start (prtvoice.launch): the pipe to the parent
# that plays. While it is set, `play` checks and prepares, then hands off.
_hand_off_fd: int | None = None


@dataclass(frozen=True)
class PlayRequest:
    """Everything `run` needs, found by `prepare` (picklable: it may cross a pipe)."""

    script: str  # as the user wrote it, for messages
    loaded: Any  # session.Loaded
    config: Any  # config.Config
    options: Any  # options.Options
    start: int  # the section to start at
    only_index: int | None
    minutes: float | None
    device: int | str | None
    volume: float
    ambience: str | None
    traceback: bool = False  # --traceback: errors in `run` raise


# -- the two halves --------------------------------------------------------------


def prepare(script: str, *, config, minutes, sets, vars_file, from_section, only, device,
            volume, ambience, resume, traceback: bool = False) -> PlayRequest:  # fmt: skip
    """Read and check the script and find where to start (raises ScriptError, InputError)."""
    from prtvoice import session

    loaded = session.load(script, sets=session.parse_sets(sets or []), vars_file=vars_file)
    titles = [s.title for s in loaded.sections]
    start = 0
    only_index = None
    if only is not None:
        only_index = session.find_section(loaded, only)
    elif from_section is not None:
        start = session.find_section(loaded, from_section)
    elif resume:
        from prtvoice import resume as resuming

        point = resuming.load(loaded.id, loaded.path)
        start = resuming.resume_section(point, titles)
        if point is None:
            say("no stopped session of this script is remembered: starting at the beginning")
    options = session.options_from(config, ambience=ambience)
    return PlayRequest(script=script, loaded=loaded, config=config, options=options,
                       start=start, only_index=only_index, minutes=minutes,
                       device=_device_spec(device), volume=volume, ambience=ambience,
                       traceback=traceback)  # fmt: skip


def preload() -> None:
    """Import what `run` uses (and start PortAudio loading), for a caller that has
    time now: the parent of a split start, while its child reads the script."""
    blas.one_thread()
    from prtvoice.device import warm_up

    warm_up()  # PortAudio's own start-up runs without the GIL, beside the imports below
    import numpy  # noqa: F401
    import soxr  # noqa: F401 - the first clip's resampler

    from prtvoice import keys, live, player, render, resume, session, sounds  # noqa: F401
    from prtvoice.tts import bank  # noqa: F401 - the voice bank (lazy in prtvoice.tts)


def run(request: PlayRequest, *, engine) -> int:
    """Play `request` to its end or until stopped; the exit status (0, or 130 when stopped).

    Raises PrtvoiceError for what went wrong (a device, the voice).
    """
    from prtvoice import resume as resuming
    from prtvoice import session

    blas.one_thread()
    loaded, options, start, only_index = (request.loaded, request.options, request.start,
                                          request.only_index)  # fmt: skip
    titles = [s.title for s in loaded.sections]
    sounds = session.sound_bank(options)
    from prtvoice.live import LiveSession, warm_opening

    warm_opening(loaded, section=start if only_index is None else only_index, sounds=sounds)
    from prtvoice.device import warm_up

    warm_up()  # PortAudio initialises on a thread while the session is set up (if not yet)
    if request.ambience is not None:
        from prtvoice.render import resolve_ambience

        resolve_ambience(loaded.ambience, options=options)  # an unknown name fails now
    # One speech worker: it makes clips far faster than they play, and a second
    # one would take a core (~0.1 s to start) just while the first sound is due.
    voices = session.voice_bank(request.config, options, engine=engine, jobs=1)
    live = LiveSession(loaded, options=options, voices=voices, sounds=sounds,
                       target_seconds=None if request.minutes is None else request.minutes * 60.0,
                       only_section=only_index)  # fmt: skip
    live.warm(start)  # the first words are spoken while the player is set up
    from prtvoice.player import Controller

    controller = Controller(live, device=request.device, volume=request.volume,
                            start_section=start, block_frames=options.block_frames)  # fmt: skip
    # Everything the session imports, imported before SIGTERM may raise (below):
    # an exception landing in an import can leave its lock held for good.
    import shutil  # noqa: F401 - for _draw_status

    from prtvoice.keys import KeyReader  # noqa: F401 - for _drive

    interrupted = False
    try:
        with signals_request_stop() as stop:
            controller.start()
            try:
                _drive(controller, stop=stop)
            except (KeyboardInterrupt, PrtvoiceError) as exc:
                if isinstance(exc, PrtvoiceError) and exc.exit_status != ExitStatus.INTERRUPTED:
                    raise
                interrupted = True
                controller.stop(fade=True)
                try:
                    _drive(controller, keys=False)
                except (KeyboardInterrupt, PrtvoiceError):
                    controller.stop(fade=False)
            result = controller.wait()
    finally:
        controller.close()
        live.close()
        voices.close()
    _clear_status()
    if only_index is None:
        if result.completed:
            resuming.clear(loaded.id, loaded.path)
        else:
            section = min(result.section, len(titles) - 1)
            resuming.save(loaded.id, loaded.path, section=section, title=titles[section],
                          frame=result.position)  # fmt: skip
            say(f"stopped in section {section + 1} ({titles[section]}); "
                f"`prtvoice play {request.script} --resume` continues from there")  # fmt: skip
    if result.underflows or result.gaps:
        say(f"warning: the sound stuttered: {result.underflows} device underflow(s), "
            f"{result.gaps} wait(s) for audio; a less busy machine or `prtvoice export` helps")  # fmt: skip
    return int(ExitStatus.INTERRUPTED) if interrupted else 0


# -- a split start (prtvoice.launch) -------------------------------------------------


def hands_off() -> bool:
    """True in the child of a split start: `play` prepares, then calls `hand_off`."""
    return _hand_off_fd is not None


def hand_off(request: PlayRequest) -> None:
    """Send the prepared request to the parent, which plays it (child of a split start)."""
    global _hand_off_fd
    fd, _hand_off_fd = _hand_off_fd, None
    assert fd is not None
    import pickle

    data = memoryview(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def hand_off_to(fd: int) -> None:
    """Make this process (the child of a split start) hand its request to `fd`."""
    global _hand_off_fd
    _hand_off_fd = fd


# -- signals, keys and the status line ---------------------------------------------


@contextlib.contextmanager
def signals_request_stop() -> Iterator[threading.Event]:
    """While playing, SIGTERM and SIGINT only ask for a stop (an Event the drive
    loop checks), never raise in the middle of whatever runs: an exception landing
    inside Thread.start() or an import leaves the interpreter's own state broken.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request(signum, frame):
        stop.set()

    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _device_spec(device: str | None):
    if device is None:
        return None
    return int(device) if device.strip().isdigit() else device


def _drive(controller, *, keys: bool = True, stop: threading.Event | None = None) -> None:
    """Until the session ends: read keys (on a terminal) and draw the status line.

    Raises KeyboardInterrupt when `stop` is set (a signal asked for it) or on Ctrl-C.
    """
    from prtvoice.keys import KeyReader, dispatch

    def stop_requested() -> bool:
        return stop is not None and stop.is_set()

    show = sys.stdout.isatty()
    if keys and KeyReader.is_terminal():
        with KeyReader() as reader:
            while controller.wait(timeout=0) is None:  # also raises what went wrong
                if stop_requested():
                    raise KeyboardInterrupt
                for key in reader.read(0.15):
                    if key == "ctrl-c":
                        raise KeyboardInterrupt
                    dispatch(key, controller)
                if show:
                    _draw_status(controller.snapshot())
        return
    while controller.wait(timeout=0.25) is None:
        if stop_requested():
            raise KeyboardInterrupt
        if show:
            _draw_status(controller.snapshot())


_STATUS = {"width": 0}


def _draw_status(snap) -> None:
    import shutil

    from prtvoice.plan import clock

    remaining = snap.remaining_seconds
    parts = [f"{snap.section + 1}/{snap.sections} {snap.section_title}",
             clock(snap.elapsed_seconds) + ("" if remaining is None else f"  -{clock(remaining)}")]
    if snap.paused:
        parts.append("paused")
    parts.append(f"vol {round(snap.volume * 100)}%")
    if snap.text:
        parts.append(f"“{snap.text}”")
    width = shutil.get_terminal_size((80, 20)).columns - 1
    line = "  ·  ".join(parts)[:width]
    sys.stdout.write("\r" + line.ljust(_STATUS["width"]))
    sys.stdout.flush()
    _STATUS["width"] = len(line)


def _clear_status() -> None:
    if _STATUS["width"] and sys.stdout.isatty():
        sys.stdout.write("\r" + " " * _STATUS["width"] + "\r")
        sys.stdout.flush()
    _STATUS["width"] = 0
