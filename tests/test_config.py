"""User settings: defaults, reading, errors with places, atomic saving."""

from __future__ import annotations

from pathlib import Path

import pytest

from prtvoice.config import Config, load_config, save_config
from prtvoice.errors import InputError


def test_missing_file_gives_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("PRTVOICE_CONFIG", str(tmp_path / "none.yaml"))
    assert load_config() == Config()


def test_reads_every_setting(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "engine: command\nvoice: en-us+f3\nrate: 0.9\noutput_dir: ~/prt\n"
        'command: ["espeak-ng", "-w", "{out}"]\nstdin: true\nloudness: -18\n'
        "artist: Me\nalbum: Calm\n"
    )
    config = load_config(path)
    assert config == Config(
        engine="command",
        voice="en-us+f3",
        rate=0.9,
        output_dir=Path("~/prt").expanduser(),
        command=("espeak-ng", "-w", "{out}"),
        command_stdin=True,
        loudness=-18.0,
        artist="Me",
        album="Calm",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("engine: festival\n", r"config.yaml:1:1: `engine` must be pyttsx3 or command"),
        ("voice: x\nrat: 2\n", r"config.yaml:2:1: unknown setting `rat` \(did you mean `rate`\?\)"),
        ("rate: fast\n", r"config.yaml:1:1: `rate` must be a number"),
        ("command: espeak-ng\n", r"`command` must be a list"),
        ("rate: [1\n", r"config.yaml:2:1: not valid YAML"),
        ("- a\n", r"config.yaml:1:1: the settings file must be a mapping"),
    ],
)
def test_bad_settings_name_file_key_and_place(tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_config(path)


def test_save_then_load_round_trips(tmp_path):
    config = Config(
        voice="gmw/de", rate=0.8, command=("a", "{out}", "{text}"), output_dir=tmp_path / "out"
    )
    path = tmp_path / "sub" / "config.yaml"
    save_config(config, path)
    assert load_config(path) == config
    assert "engine" not in path.read_text()  # defaults are not written
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temp left
