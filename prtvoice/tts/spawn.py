"""Starting a speech worker process, with next to nothing imported.

A worker needs ~0.1 s of CPU to start (Python, then eSpeak NG's data). `play`
(prtvoice.launch) starts one before anything else, while it is the only busy
process, so that the worker is ready before the start-up processes compete
for the cores; `Worker` in prtvoice.tts.pyttsx3_engine then takes it over.
This module imports only what starting a process takes (no prtvoice.errors,
whose dataclasses cost ~30 ms), so the worker starts that much sooner.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

# Not `from typing import ...`: typing alone would hold the worker's start back ~6 ms
# (prtvoice.tts says the same); type checkers read this constant the same way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import IO

WORKER_ARGV = (sys.executable, "-m", "prtvoice.tts.worker")


class Spawned:
    """A started worker process, the file its stderr goes to, and its command."""

    __slots__ = ("argv", "process", "stderr")

    def __init__(self, process: subprocess.Popen, stderr: IO[bytes], argv: tuple[str, ...]):
        self.process, self.stderr, self.argv = process, stderr, argv

    def discard(self) -> None:
        """Stop it, unused (the configured engine is another one)."""
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            if stream is not None:
                stream.close()


def spawn(argv: Sequence[str] = WORKER_ARGV) -> Spawned:
    """Start a worker (raises OSError if it cannot be started)."""
    # stderr goes to a file, not a pipe: nobody must read it for the worker to go on.
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    except BaseException:
        stderr.close()
        raise
    return Spawned(process, stderr, tuple(argv))
