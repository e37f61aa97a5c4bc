"""Where prtvoice finds its bundled library and keeps the user's files.

Bundled `scripts/` and `audio/` sit at the top of a source checkout and are
copied into the wheel as `prtvoice/_bundled/...`; both layouts work. User
folders follow the platform's conventions (platformdirs), each overridable by
an environment variable so tests and portable setups can move them.
"""

from __future__ import annotations

import os
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


def _env_path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Synthesized clips (PRTVOICE_CACHE overrides)."""
    return _env_path("PRTVOICE_CACHE") or Path(_dirs().user_cache_dir)


def config_path() -> Path:
    """The user's settings file (PRTVOICE_CONFIG overrides)."""
    return _env_path("PRTVOICE_CONFIG") or Path(_dirs().user_config_dir) / "config.yaml"


def data_dir() -> Path:
    """The user's own scripts and sounds live below this (PRTVOICE_HOME overrides)."""
    return _env_path("PRTVOICE_HOME") or Path(_dirs().user_data_dir)


def user_scripts_dir() -> Path:
    return data_dir() / "scripts"


def user_audio_dir() -> Path:
    return data_dir() / "audio"


def state_dir() -> Path:
    """Resume positions and other small state (PRTVOICE_STATE overrides)."""
    return _env_path("PRTVOICE_STATE") or Path(_dirs().user_state_dir)
