"""Finding ffmpeg (the system's when present, otherwise the one imageio-ffmpeg ships)
and what it can do: its encoders and version. Free of numpy, so a command can ask
ffmpeg on a thread before its heavier imports.

imageio-ffmpeg ships ffmpeg but not ffprobe, so nothing in prtvoice needs
ffprobe: ffmpeg itself decodes (to raw PCM at a rate we ask for) and encodes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable

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


@functools.cache
def available_encoders(ffmpeg: str) -> frozenset[str]:
    """The audio encoders the given ffmpeg binary has (`ffmpeg -encoders`).

    Asking costs ~0.1 s (ffmpeg loads all its libraries), on every export
    before any work: the answer is kept in the cache folder for this binary
    (its real path, size, modification time and inode), so a changed or replaced
    ffmpeg is asked again. The kept answer is a hint only: unreadable, it is
    asked again; unwritable, it is not kept.
    """
    identity = _binary_identity(ffmpeg)
    if identity is not None:
        kept = _kept_encoders(identity)
        if kept is not None:
            return kept
    names = _ask_encoders(ffmpeg)
    if identity is not None:
        _keep_encoders(identity, names)
    return names


def _ask_encoders(ffmpeg: str) -> frozenset[str]:
    try:
        result = subprocess.run(
            [ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise EncoderError(f"could not run {ffmpeg}: {exc}") from exc
    names = set()
    for line in result.stdout.splitlines():
        parts = line.split()
        # Lines look like " A....D libmp3lame  libmp3lame MP3 ..."; the legend lines
        # have "=" in their second field.
        if len(parts) >= 2 and parts[0].startswith("A") and "=" not in parts[1]:
            names.add(parts[1])
    if not names:
        raise EncoderError(f"{ffmpeg} lists no audio encoders: is it a working ffmpeg?")
    return frozenset(names)


_ENCODERS_FILE = "ffmpeg-encoders.json"


def _binary_identity(ffmpeg: str) -> dict | None:
    try:
        real = os.path.realpath(ffmpeg)
        stat = os.stat(real)
    except OSError:
        return None
    return {"path": real, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}


def _kept_encoders(identity: dict) -> frozenset[str] | None:
    from prtvoice import paths

    try:
        kept = json.loads((paths.cache_dir() / _ENCODERS_FILE).read_text(encoding="utf-8"))
        if kept.get("binary") != identity:
            return None
        names = kept["encoders"]
        if not names or not all(isinstance(n, str) for n in names):
            return None
        return frozenset(names)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _keep_encoders(identity: dict, names: frozenset[str]) -> None:
    from prtvoice import paths
    from prtvoice.atomic import replace_small_file

    text = json.dumps({"binary": identity, "encoders": sorted(names)}, indent=1)
    with contextlib.suppress(OSError):  # a read-only cache folder: ask again next time
        replace_small_file(paths.cache_dir() / _ENCODERS_FILE, text + "\n")


@functools.cache
def ffmpeg_version(ffmpeg: str) -> str:
    """The first line of `ffmpeg -version` (for `doctor`)."""
    try:
        result = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EncoderError(f"could not run {ffmpeg}: {exc}") from exc
    return (result.stdout.splitlines() or ["unknown"])[0]


def encoders_soon() -> Callable[[], None]:
    """Find ffmpeg and ask it for its encoders (`available_encoders`) on a thread.

    Call what this returns before `choose_encoder`: it waits for the answer (and
    raises its EncoderError), which `choose_encoder` then takes from memory. On a
    fresh cache asking takes ~0.1 s, nearly all of it in ffmpeg's own process, and
    it needs no format: a caller starts it first and checks its input meanwhile.
    """
    failure: list[BaseException] = []

    def ask() -> None:
        try:
            available_encoders(find_ffmpeg())
        except BaseException as exc:  # raised again in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=ask, name="prtvoice-encoders", daemon=True)
    thread.start()

    def known() -> None:
        thread.join()
        if failure:
            raise failure[0]

    return known
