"""What the command line's modules share, free of typer: error lines with their
exit statuses, and quiet exits on signals before any work starts.

`cli` (the typer app), `cli_play` (a session being played) and `launch` (the
entry point) use it. Only these modules print or exit (see the house style).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from prtvoice.errors import ExitStatus, PrtvoiceError, ScriptError


def say(message: str) -> None:
    """One message line on stderr."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def report(exc: PrtvoiceError | KeyboardInterrupt) -> int:
    """Print the one line (or one per problem) that an error deserves; its exit status."""
    if isinstance(exc, ScriptError):
        for problem in exc.problems:
            say(f"error: {problem}")
        if len(exc.problems) > 1:
            say(f"{len(exc.problems)} problems in {exc.problems[0].file}")
        return int(exc.exit_status)
    if isinstance(exc, PrtvoiceError):
        say(f"error: {exc}")
        return int(exc.exit_status)
    say("stopped")  # KeyboardInterrupt
    return int(ExitStatus.INTERRUPTED)


def leave_if_portaudio_hung(status: int) -> None:
    """Exit now when a PortAudio call never returned (a frozen sound server): the
    normal exit would hang too, in sounddevice's exit handler that ends PortAudio.
    (`play` has settled PortAudio's loading, and given stderr back, by now.)"""
    device = sys.modules.get("prtvoice.device")
    if device is not None and device.hung():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


@contextlib.contextmanager
def signals_exit_quietly(before_exit: Callable[[], None] | None = None) -> Iterator[None]:
    """Until a command's work starts, SIGTERM or SIGINT end it at once with status 130.

    Nothing is written yet and nothing needs a fade, so there is nothing to
    clean up; raising instead could land inside an import and leave its lock
    held. (A speech worker ends when its pipe closes.) Once sound plays,
    `cli_play.signals_request_stop` takes over and fades out; once an export
    writes, a signal raises and the partial file is removed. `before_exit` runs
    first (a split start stops its child). In the child of a split start signals
    are the parent's to answer (prtvoice.launch), and this does nothing.
    """
    if threading.current_thread() is not threading.main_thread() or _split_child():
        yield
        return

    def leave(signum, frame):
        if before_exit is not None:
            with contextlib.suppress(Exception):
                before_exit()
        os.write(2, b"stopped\n")
        os._exit(int(ExitStatus.INTERRUPTED))

    previous = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _split_child() -> bool:
    from prtvoice import cli_play  # here: cli_play itself imports this module

    return cli_play.hands_off()
