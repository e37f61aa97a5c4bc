"""Finding ffmpeg: the system's when present, otherwise the one imageio-ffmpeg ships.

imageio-ffmpeg ships ffmpeg but not ffprobe, so nothing in prtvoice needs
ffprobe: ffmpeg itself decodes (to raw PCM at a rate we ask for) and encodes.
"""

from __future__ import annotations

import functools
import os
import shutil

from prtvoice.errors import EncoderError


@functools.cache
def find_ffmpeg() -> str:
    """Path of an ffmpeg executable (PRTVOICE_FFMPEG overrides); EncoderError if none."""
    configured = os.environ.get("PRTVOICE_FFMPEG")
    if configured:
        found = shutil.which(configured)
        if not found:
            raise EncoderError(f"PRTVOICE_FFMPEG names {configured!r}, which is not an executable")
        return found
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # the package raises RuntimeError when its binary is missing
        raise EncoderError(
            "ffmpeg was not found: install it (apt install ffmpeg) or `pip install imageio-ffmpeg`"
        ) from exc
