"""numpy's BLAS on one thread: prtvoice's cores belong to eSpeak, ffmpeg and the audio.

OpenBLAS (numpy's BLAS on Linux and Windows; Accelerate on macOS) starts a
thread per core as numpy loads and spreads every matrix product above a small
size over them, spinning while it waits. The only products prtvoice makes are
the true-peak meter's (prtvoice.truepeak), small ones that run beside the
encoders and the speech workers, which want those cores: on two cores a spread
product took 1.4-1.6x the CPU for the same result. The library reads the setting
as numpy loads, so `one_thread` runs before the first import of numpy; a
setting of the user's own is kept.
"""

from __future__ import annotations

import os
import sys

_SETTINGS = ("OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def one_thread() -> None:
    """Ask for one BLAS thread, if numpy has not loaded yet (afterwards it is too late)."""
    if "numpy" not in sys.modules:
        for name in _SETTINGS:
            os.environ.setdefault(name, "1")
