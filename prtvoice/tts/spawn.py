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
from collections.abc import Sequence
from typing import IO, NamedTuple

WORKER_ARGV = (sys.executable, "-m", "prtvoice.tts.worker")


class Spawned(NamedTuple):
    """A started worker process and the file its stderr goes to."""

    process: subprocess.Popen
    stderr: IO[bytes]
    argv: tuple[str, ...]

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
