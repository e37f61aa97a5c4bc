"""The `prtvoice` command's entry point; `play` starts in two processes at once.

Before its first sound, `play` spends nearly all its time importing: the
command line (typer) and the script on one side, numpy, the player and
PortAudio on the other, about 0.2 s each on a slow 2-core machine, and one
interpreter runs them one after the other. So `play` forks before importing
anything (no thread runs yet, nothing is loaded):

- the child is the normal command line: it parses the arguments, reads and
  checks the script, prints any error or help and exits with its status; for
  a good request it hands the prepared `cli_play.PlayRequest` to the parent
  through a pipe instead of playing it. It ignores SIGINT and SIGTERM: they
  are the parent's to answer.
- the parent stays the process that was started (its pid, its terminal, its
  signals, its exit status). Meanwhile it loads the audio side; then it plays
  the request, or leaves with the child's status.

Before the fork, while it is the only busy process, it starts the speech
worker process (~0.1 s of CPU, on the other core; the parent's engine takes
it over) and imports what both sides need (the error types, the script's
classes: ~0.1 s that each would otherwise spend on its own), so neither
competes with them once both run.

Every other command, `play --help` and `--list-devices`, platforms other than
Linux, and PRTVOICE_ONE_PROCESS=1 run the command line in one process, as
`prtvoice.cli.main` does.
"""

from __future__ import annotations

import os
import signal
import sys

_GLOBAL_FLAGS = {"--traceback"}
_NOT_SPLIT = {"-h", "--help", "--list-devices", "--version"}


def main() -> None:
    """Console-script entry point."""
    from prtvoice import blas

    blas.one_thread()  # before anything loads numpy (prtvoice.blas says why)
    if splits(sys.argv[1:]):
        _play_in_two_processes()
    from prtvoice.cli import main as cli_main

    cli_main()


def splits(args: list[str]) -> bool:
    """Whether these arguments start a split `play` (a guess on the raw words: the
    child parses them properly, and a wrong guess costs only a wasted preload)."""
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return False
    if os.environ.get("PRTVOICE_ONE_PROCESS", "").strip() not in ("", "0"):
        return False  # for measuring, or a platform where forking misbehaves
    words = list(args)
    while words and words[0] in _GLOBAL_FLAGS:
        words.pop(0)
    return bool(words) and words[0] == "play" and not _NOT_SPLIT.intersection(words)


def _play_in_two_processes() -> None:
    # Both processes spend their start importing and reading: millions of small
    # objects and no cyclic garbage worth collecting. Without the collector's
    # passes over them, ~4 % fewer instructions (counted with callgrind). The
    # child never turns it back on (it leaves after the hand-off); the parent
    # does before it plays.
    import gc

    gc.disable()
    child = 0

    def leave(signum, frame) -> None:  # until `_parent` takes over, as cli_play does
        if child:
            os.kill(child, signal.SIGKILL)
        os.write(2, b"stopped\n")
        os._exit(130)

    signal.signal(signal.SIGINT, leave)
    signal.signal(signal.SIGTERM, leave)
    spawned = _spawn_worker()
    from prtvoice import cli_common, cli_play, config, script, session  # noqa: F401 - both use them
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        _child(write_end)  # never returns
    os.close(write_end)
    _parent(child, read_end, spawned)  # never returns


def _child(write_end: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    status = 1
    try:
        from prtvoice import cli, cli_play

        cli_play.hand_off_to(write_end)
        cli.main()
        status = 0
    except SystemExit as exc:
        status = _status_of(exc)
    except BrokenPipeError:  # the parent is gone
        status = 1
    except BaseException:  # --traceback (or a bug): shown, as one process would show it
        import traceback

        traceback.print_exc()
        status = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


def _status_of(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    sys.stderr.write(f"{exc.code}\n")
    return 1


def _parent(child: int, read_end: int, spawned) -> None:
    from prtvoice import cli_common, cli_play
    from prtvoice.device import settle

    reader = None
    engine = None

    def stop_child() -> None:
        if reader is not None:
            if reader.reaped:  # gone already, and its pid may be another process's now
                return
            reader.stopping = True  # its end is ours: the reader must not report it
        os.kill(child, signal.SIGKILL)

    try:
        with cli_common.signals_exit_quietly(before_exit=stop_child):
            try:
                reader = _Reader(read_end, child)  # leaves at once if the child fails
                engine = _engine_if_configured(spawned)
                cli_play.preload()
                payload = reader.payload()
            except BaseException:
                stop_child()
                raise
            status = _play(payload, engine)
    finally:
        if engine is not None:
            engine.close()
        settle()  # before any exit: PortAudio's loading silences stderr while it runs
    cli_common.leave_if_portaudio_hung(status)
    sys.stdout.flush()
    sys.stderr.flush()
    import gc

    gc.freeze()  # no garbage collections over everything while exiting (cli.leave_lightly)
    sys.exit(status)


def _play(payload: bytes, engine) -> int:
    """Play the child's request with `engine` (None: start it now); the exit status."""
    import gc
    import pickle

    from prtvoice import cli_common, cli_play
    from prtvoice.device import settle
    from prtvoice.errors import PrtvoiceError

    request = pickle.loads(payload)  # trusted: our own child wrote it
    # Off since the start (`_play_in_two_processes`); a session runs for hours, so on
    # again, but first everything made so far (modules, the script: all kept for the
    # session) moves out of the collector's sight. Else its first pass walks all of
    # it while the first sound is due: 13-20 ms measured on a 2 h script.
    gc.freeze()
    gc.enable()
    try:
        if engine is None:  # the parent could not read the configuration; the child could
            from prtvoice.tts.engine import start_engine

            engine = start_engine(request.config)
        return cli_play.run(request, engine=engine)
    except (PrtvoiceError, KeyboardInterrupt) as exc:
        if request.traceback and not isinstance(exc, KeyboardInterrupt):
            raise
        settle()
        return cli_common.report(exc)
    finally:
        if engine is not None:
            engine.close()  # idempotent


def _spawn_worker():
    """A speech worker process, started first of all (prtvoice.tts.spawn); None if it
    cannot be started (the engine then starts its own and reports why)."""
    from prtvoice.tts.spawn import spawn

    try:
        return spawn()
    except OSError:
        return None


def _engine_if_configured(spawned):
    """The configured speech engine, warming up with the `spawned` worker (which is
    stopped if the engine is another); None when the configuration has a problem
    (the child reports it)."""
    from prtvoice.config import load_config
    from prtvoice.errors import PrtvoiceError
    from prtvoice.tts.engine import make_engine

    try:
        engine = make_engine(load_config())
    except PrtvoiceError:
        engine = None
    warm = getattr(engine, "warm", None)
    if callable(warm):
        warm(spawned=spawned)
    elif spawned is not None:
        spawned.discard()
    return engine


class _Reader:
    """Reads the child's request on a thread while the parent loads the audio side.

    A child that ends without one has printed why (or its help): the parent then
    leaves at once with the child's status, rather than finish loading numpy and
    PortAudio for nothing. `os._exit` is safe at any point of that loading (no
    exit handler runs, nothing is written yet) and prints nothing.
    """

    def __init__(self, fd: int, child: int) -> None:
        import threading

        self._fd, self._child = fd, child
        self._chunks: list[bytes] = []
        self.stopping = False  # set when the parent kills the child itself
        self.reaped = False
        self._thread = threading.Thread(target=self._read, name="prtvoice-hand-off", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while chunk := os.read(self._fd, 1 << 16):
                self._chunks.append(chunk)
        finally:
            os.close(self._fd)
        # The child leaves right after its hand-off: reaped here, so no zombie
        # lingers for the length of the session.
        _, wait_status = os.waitpid(self._child, 0)
        self.reaped = True
        if self._chunks or self.stopping:
            return
        status = os.waitstatus_to_exitcode(wait_status)
        if status < 0:  # killed by a signal (not ours)
            sys.stderr.write(f"error: prtvoice stopped unexpectedly (signal {-status})\n")
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    def payload(self) -> bytes:
        self._thread.join()
        return b"".join(self._chunks)
