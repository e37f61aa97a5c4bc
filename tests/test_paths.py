"""The user's folders: platformdirs' answers, found without importing it where plain."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

from prtvoice import paths

KINDS = ["user_cache_dir", "user_config_dir", "user_data_dir", "user_state_dir"]
VARIABLES = {kind: paths._XDG[kind][0] for kind in KINDS}

LINUX = sys.platform.startswith("linux")  # the plain case is platformdirs' Linux one


def _platformdirs(kind: str) -> str:
    return getattr(platformdirs.PlatformDirs("prtvoice", appauthor=False), kind)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "home, value",
    [
        ("/home/pat", None),
        ("/home/pat/", None),
        ("/", None),
        ("/home/pat", ""),
        ("/home/pat", "   "),
        ("/home/pat", "/srv/xdg"),
        ("/home/pat", "/srv/xdg/"),
        ("/home/pat", "/srv/with space"),
    ],
)
def test_plain_case_is_platformdirs_answer(monkeypatch, kind, home, value):
    monkeypatch.delenv("ANDROID_DATA", raising=False)
    monkeypatch.setenv("HOME", home)
    if value is None:
        monkeypatch.delenv(VARIABLES[kind], raising=False)
    else:
        monkeypatch.setenv(VARIABLES[kind], value)
    fast = paths._plain_xdg(kind)
    if not LINUX:
        assert fast is None  # left to platformdirs
        return
    assert fast is not None
    assert fast == _platformdirs(kind)
    assert paths._user_dir(kind) == Path(_platformdirs(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_anything_else_is_left_to_platformdirs(monkeypatch, kind):
    monkeypatch.setenv("HOME", "/home/pat")
    monkeypatch.setenv(VARIABLES[kind], "relative/xdg")  # releases differ on this one
    assert paths._plain_xdg(kind) is None
    assert paths._user_dir(kind) == Path(_platformdirs(kind))
    monkeypatch.delenv(VARIABLES[kind])
    monkeypatch.setenv("HOME", "not/absolute")
    assert paths._plain_xdg(kind) is None
    monkeypatch.setenv("HOME", "/home/pat")
    monkeypatch.setenv("ANDROID_DATA", "/data")
    assert paths._plain_xdg(kind) is None


def test_overrides_come_first(monkeypatch, tmp_path):
    monkeypatch.setenv("PRTVOICE_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("PRTVOICE_CONFIG", str(tmp_path / "settings.yaml"))
    monkeypatch.setenv("PRTVOICE_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("PRTVOICE_STATE", str(tmp_path / "s"))
    assert paths.cache_dir() == tmp_path / "c"
    assert paths.config_path() == tmp_path / "settings.yaml"
    assert paths.data_dir() == tmp_path / "h"
    assert paths.user_scripts_dir() == tmp_path / "h" / "scripts"
    assert paths.state_dir() == tmp_path / "s"


def test_plain_case_does_not_import_platformdirs(tmp_path):
    """What the speed-up is for: `play`'s two start-up processes never load it."""
    code = (
        "import sys\n"
        "from prtvoice import paths\n"
        "found = [paths.cache_dir(), paths.config_path(), paths.data_dir(), paths.state_dir()]\n"
        "print('platformdirs' in sys.modules, *found, sep='\\n')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRTVOICE_", "XDG_"))}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("ANDROID_DATA", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    if not LINUX:  # elsewhere platformdirs answers
        assert lines[0] == "True"
        return
    assert lines == [
        "False",
        str(tmp_path / "cache" / "prtvoice"),
        str(tmp_path / ".config" / "prtvoice" / "config.yaml"),
        str(tmp_path / ".local" / "share" / "prtvoice"),
        str(tmp_path / ".local" / "state" / "prtvoice"),
    ]
