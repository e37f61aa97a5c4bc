"""Where prtvoice finds its bundled library and keeps the user's files.

Bundled `scripts/` and `audio/` sit at the top of a source checkout and are
copied into the wheel as `prtvoice/_bundled/...`; both layouts work. User
folders follow the platform's conventions (platformdirs), each overridable by
an environment variable so tests and portable setups can move them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _bundled(name: str) -> Path:
    installed = _PACKAGE / "_bundled" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name  # a source checkout or editable install


def bundled_scripts_dir() -> Path:
    """The exercise library shipped with prtvoice."""
    return _bundled("scripts")


def bundled_audio_dir() -> Path:
    """The sound library shipped with prtvoice (the format's `audio/` folder)."""
    return _bundled("audio")


def _dirs():
    import platformdirs  # lazy: keeps `--help` fast

    return platformdirs.PlatformDirs("prtvoice", appauthor=False)


# platformdirs' Linux folders: (XDG variable, default under the home folder).
_XDG = {
    "user_cache_dir": ("XDG_CACHE_HOME", ".cache"),
    "user_config_dir": ("XDG_CONFIG_HOME", ".config"),
    "user_data_dir": ("XDG_DATA_HOME", ".local/share"),
    "user_state_dir": ("XDG_STATE_HOME", ".local/state"),
}


def _plain_xdg(kind: str) -> str | None:
    """platformdirs' answer for `kind` in the plain Linux case, without importing it.

    Importing platformdirs takes ~15 ms of CPU, and `play` asks in both of its
    start-up processes (the script's settings, the clip cache) while every
    millisecond before the first sound counts. In the plain case (Linux, an
    absolute HOME, the XDG variable unset, blank or absolute) every platformdirs
    release since 3.0 answers "$XDG_..._HOME/prtvoice" or "~/<default>/prtvoice"
    (tests/test_paths.py holds this to the installed one); anything else
    (a relative value, Android, other systems) is left to platformdirs. None then.
    """
    if not sys.platform.startswith("linux") or "ANDROID_DATA" in os.environ:
        return None
    variable, default = _XDG[kind]
    home = os.environ.get("HOME", "")
    value = os.environ.get(variable, "")
    if not home.startswith("/"):
        return None
    if value.startswith("/"):
        return os.path.join(value, "prtvoice")
    if value.strip():
        return None  # relative: platformdirs releases differ on it
    return os.path.join(home, default, "prtvoice")


def _user_dir(kind: str) -> Path:
    return Path(_plain_xdg(kind) or getattr(_dirs(), kind))


def _env_path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Synthesized clips (PRTVOICE_CACHE overrides)."""
    return _env_path("PRTVOICE_CACHE") or _user_dir("user_cache_dir")


def config_path() -> Path:
    """The user's settings file (PRTVOICE_CONFIG overrides)."""
    return _env_path("PRTVOICE_CONFIG") or _user_dir("user_config_dir") / "config.yaml"


def data_dir() -> Path:
    """The user's own scripts and sounds live below this (PRTVOICE_HOME overrides)."""
    return _env_path("PRTVOICE_HOME") or _user_dir("user_data_dir")


def user_scripts_dir() -> Path:
    return data_dir() / "scripts"


def user_audio_dir() -> Path:
    return data_dir() / "audio"


def state_dir() -> Path:
    """Resume positions and other small state (PRTVOICE_STATE overrides)."""
    return _env_path("PRTVOICE_STATE") or _user_dir("user_state_dir")
