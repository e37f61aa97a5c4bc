"""Finding eSpeak NG for pyttsx3: the system library when present, else the pip-shipped one.

pyttsx3 loads ``libespeak-ng.so.1`` by name. When the system has no such
library, the copy shipped by ``espeakng-loader`` is loaded first with
RTLD_GLOBAL under that same soname, so pyttsx3's lookup finds it, and
ESPEAK_DATA_PATH points eSpeak at the data shipped beside it. So on Linux
``pip install`` alone is enough to speak; no apt step is needed.

PRTVOICE_ESPEAK=system|bundled forces one of the two (tests, bug reports).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections import namedtuple
from pathlib import Path

SYSTEM_NAMES = ("libespeak-ng.so.1", "/usr/local/lib/libespeak-ng.so.1", "libespeak-ng.1.dylib")


# A named tuple, not a dataclass: this module is most of what a speech worker
# imports, and dataclasses (with inspect, ast, dis ...) cost each worker ~20 ms
# (prtvoice.errors too, so it is imported only to raise).
class EspeakLibrary(namedtuple("EspeakLibrary", "source path version data_path")):
    """Which eSpeak NG library speaks: `source` is "system" or "bundled"; `data_path`
    None means the library's compiled-in default."""

    __slots__ = ()

    def describe(self) -> str:
        """One line for `prtvoice doctor`."""
        data = f", data {self.data_path}" if self.data_path else ""
        return f"eSpeak NG {self.version} ({self.source} library {self.path}{data})"


def _voice_error(message: str) -> Exception:
    from prtvoice.errors import VoiceError  # only when failing: errors imports dataclasses

    return VoiceError(message)


def _version(lib: ctypes.CDLL) -> str:
    info = lib.espeak_Info
    info.restype = ctypes.c_char_p
    info.argtypes = [ctypes.c_void_p]
    return (info(None) or b"unknown").decode("ascii", "replace").split()[0]


def _system() -> EspeakLibrary | None:
    for name in SYSTEM_NAMES:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        return EspeakLibrary("system", name, _version(lib), os.environ.get("ESPEAK_DATA_PATH"))
    return None


def _bundled() -> EspeakLibrary:
    try:
        import espeakng_loader
    except ImportError as exc:
        raise _voice_error(
            "eSpeak NG was not found: install it (apt install espeak-ng) or "
            "`pip install espeakng-loader`"
        ) from exc
    base = espeakng_loader.get_library_path()
    # The ".1" copy carries the soname pyttsx3 asks for.
    path = base + ".1" if Path(base + ".1").exists() else base
    try:
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        data = espeakng_loader.get_data_path()
    except (OSError, RuntimeError) as exc:
        raise _voice_error(f"the pip-installed eSpeak NG library does not load: {exc}") from exc
    os.environ["ESPEAK_DATA_PATH"] = data
    return EspeakLibrary("bundled", path, _version(lib), data)


@functools.cache
def load_espeak() -> EspeakLibrary:
    """Load eSpeak NG into this process (once) so pyttsx3 finds it; VoiceError if none.

    Must run before ``pyttsx3.drivers._espeak`` is imported.
    """
    wanted = os.environ.get("PRTVOICE_ESPEAK", "auto").strip().lower() or "auto"
    if wanted not in ("auto", "system", "bundled"):
        raise _voice_error(f"PRTVOICE_ESPEAK must be auto, system or bundled, not {wanted!r}")
    if wanted in ("auto", "system"):
        found = _system()
        if found is not None:
            return found
        if wanted == "system":
            raise _voice_error("PRTVOICE_ESPEAK=system, but no system eSpeak NG library was found")
    if not sys.platform.startswith("linux") and wanted == "auto":
        raise _voice_error("eSpeak NG was not found: install eSpeak NG for your system")
    return _bundled()


@functools.cache
def pyttsx3_version() -> str:
    """pyttsx3's installed version ("unknown" without package metadata), for clip keys.

    Read from the ``.dist-info`` folder beside the package (PEP 627), where
    importlib.metadata finds it too for an installed wheel: importing
    importlib.metadata alone takes ~50 ms (email, zipfile, csv ...), which a
    speech worker paid before its first clip on a cold cache and every export
    before its first block. Anything unusual (no such folder, several, an egg,
    an editable checkout) is left to importlib.metadata.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("pyttsx3")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        found = sorted(Path(spec.origin).parent.parent.glob("pyttsx3-*.dist-info"))
        if len(found) == 1:
            version = _metadata_version(found[0] / "METADATA")
            if version:
                return version
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyttsx3")
    except PackageNotFoundError:
        return "unknown"


def _metadata_version(path: Path) -> str | None:
    """The Version field of a core-metadata file (its header ends at the first blank line)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            for line in file:
                if not line.strip():
                    break
                name, _, value = line.partition(":")
                if name.strip().lower() == "version":
                    return value.strip() or None
    except OSError:
        return None
    return None
