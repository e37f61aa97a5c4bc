"""Work on the other core in a forked copy of this process.

An export's measuring pass is Python and numpy on one core (threads would share
one interpreter lock), while the other core has nothing to do: nothing can be
encoded before the gain is known. A forked child shares every clip already in
memory (copy on write), so it can render and measure a part of the session at
once, and hand back a small result through a pipe.

The child only computes: it never prints, never uses the parent's speech worker
(whose pipes refuse any other process, and whose clean-up leaves it alone there)
and leaves with `os._exit`, so no exit handler, `finally` or buffered output of
the parent runs twice. Anything that goes wrong in it (an exception, a signal, a result that
does not pickle) makes `result()` raise ForkFailed, and the caller does that
work itself: the child is a speed-up, never a dependency.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")


class ForkFailed(Exception):
    """The child did not deliver its result; the caller does the work itself."""


def available() -> bool:
    """Whether work can be forked here (Linux, and PRTVOICE_ENCODERS is not 1).

    PRTVOICE_ENCODERS=1 keeps an export on one core (a batch running exports
    side by side sets it, as a user may): that covers its helper processes too.
    """
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return False
    return os.environ.get("PRTVOICE_ENCODERS", "").strip() != "1"


def both(here: Callable[[], T], there: Callable[[], U], *, fork: bool = True) -> tuple[T, U]:
    """`here()` in this process while `there()` runs in a forked helper; both results.

    Without `fork` (or when forking is not available, or the helper fails) `there()`
    runs here too, after `here()`: the same results, on one core.
    """
    helper: Forked[U] | None = None
    try:
        if fork and available():
            with _signals_deferred():
                try:
                    helper = Forked(there)
                except ForkFailed:
                    helper = None
        first = here()
        if helper is None:
            return first, there()
        try:
            second = helper.result()
        except ForkFailed:
            second = there()
        return first, second
    except BaseException:
        if helper is not None:
            helper.cancel()
        raise


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM while forking; deliver one caught meanwhile after.

    At a fork Python runs the at-fork callbacks libraries register (logging's among
    them), and an exception a signal handler raises inside one is printed and
    dropped ("Exception ignored in ..."): the interrupt would be lost. Delivered
    after, it raises where the caller can stop the helper it now knows.
    """
    wanted = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or any(
        signal.getsignal(signum) is None for signum in wanted  # set outside Python
    ):
        yield  # handlers can only change in the main thread, and only it runs them
        return
    caught: list[int] = []

    def hold(signum, frame) -> None:
        caught.append(signum)

    before = {signum: signal.signal(signum, hold) for signum in wanted}
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        if caught:
            signal.raise_signal(caught[0])


class Forked(Generic[T]):
    """`work()` running in a forked child; `result()` waits for what it returned."""

    def __init__(self, work: Callable[[], T]) -> None:
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(read_end)
            os.close(write_end)
            raise ForkFailed(f"cannot fork: {exc}") from exc
        if pid == 0:  # the child
            os.close(read_end)
            _child(work, write_end)  # never returns
        os.close(write_end)
        self._pid: int | None = pid
        self._fd: int | None = read_end
        self._status: int | None = None

    def result(self) -> T:
        """The child's return value; ForkFailed if it failed or died."""
        chunks = []
        try:
            assert self._fd is not None
            while chunk := os.read(self._fd, 1 << 20):
                chunks.append(chunk)
        finally:
            self._close()
        if self._status != 0 or not chunks:
            raise ForkFailed(f"the helper process ended with status {self._status}")
        try:
            return pickle.loads(b"".join(chunks))  # trusted: our own child wrote it
        except Exception as exc:
            raise ForkFailed(f"the helper's result was damaged: {exc}") from exc

    def cancel(self) -> None:
        """Stop the child (idempotent); for a caller that leaves early."""
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pid is not None:
            _, status = os.waitpid(self._pid, 0)
            self._pid = None
            self._status = os.waitstatus_to_exitcode(status)

    def __del__(self) -> None:  # a caller that never asked: no zombie, no stray child
        if getattr(self, "_pid", None) is not None:
            self.cancel()


def _child(work: Callable[[], object], fd: int) -> None:
    status = 1
    try:
        # The parent's handlers would raise its exceptions here; a signal to the
        # process group (Ctrl-C) simply ends the helper, and the parent answers it.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        data = memoryview(pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL))
        while data:
            data = data[os.write(fd, data) :]
        status = 0
    except BaseException:  # reported to the parent as a failed helper (status 1)
        status = 1
    finally:
        os._exit(status)
