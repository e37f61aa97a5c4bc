"""The user's settings file (YAML at paths.config_path(); PRTVOICE_CONFIG moves it).

A missing file means the defaults. A bad file is an InputError naming the
file, the key and, where known, its line:col.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path

from prtvoice.errors import InputError

ENGINES = ("pyttsx3", "command")


@dataclass(frozen=True)
class Config:
    """Settings a user keeps between runs; every field has a safe default."""

    engine: str = "pyttsx3"
    voice: str | None = None
    rate: float = 1.0
    output_dir: Path | None = None
    command: tuple[str, ...] | None = None
    command_stdin: bool = False
    loudness: float = -16.0
    artist: str = "prtvoice"
    album: str = "prtvoice"


# In the file `command_stdin` may also be written `stdin`, as in the command's own docs.
_ALIASES = {"stdin": "command_stdin"}


def _check(name: str, value: object, where: str) -> object:
    def bad(expected: str) -> InputError:
        return InputError(f"{where}: `{name}` must be {expected}, not {value!r}")

    if name == "engine":
        if value not in ENGINES:
            raise bad(" or ".join(ENGINES))
        return value
    if name in ("voice",):
        if value is not None and not isinstance(value, str):
            raise bad("a voice name")
        return value
    if name in ("artist", "album"):
        if not isinstance(value, str):
            raise bad("text")
        return value
    if name == "rate":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.3 <= value <= 3:
            raise bad("a number from 0.3 to 3")
        return float(value)
    if name == "loudness":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -40 <= value <= -5:
            raise bad("a LUFS value from -40 to -5")
        return float(value)
    if name == "output_dir":
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise bad("a folder path")
        return Path(value).expanduser()
    if name == "command":
        if value is None:
            return None
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise bad('a list of arguments, like ["espeak-ng", "-w", "{out}", "{text}"]')
        return tuple(value)
    if name == "command_stdin":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    raise AssertionError(name)  # pragma: no cover


def load_config(path: Path | None = None) -> Config:
    """The settings in `path` (default paths.config_path()); defaults if it does not exist."""
    from prtvoice import paths

    path = Path(path) if path is not None else paths.config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the settings file: {exc}") from exc
    import yaml  # only now: most machines have no settings file (play's start)

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise InputError(f"{place}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        return Config()
    if not isinstance(data, dict):
        raise InputError(f"{path}:1:1: the settings file must be a mapping of `key: value`")
    places = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            places[key_node.value] = (
                f"{path}:{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}"
            )
    known = {f.name for f in fields(Config)}
    values = {}
    for key, value in data.items():
        where = places.get(key, str(path))
        name = _ALIASES.get(key, key)
        if name not in known:
            import difflib

            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise InputError(f"{where}: unknown setting `{key}`{hint}")
        values[name] = _check(name, value, where)
    return Config(**values)


def save_config(config: Config, path: Path | None = None) -> None:
    """Write `config` as YAML, atomically (temp file + os.replace); only non-defaults."""
    import yaml

    from prtvoice import paths

    path = Path(path) if path is not None else paths.config_path()
    default = Config()
    data = {}
    for f in fields(Config):
        value = getattr(config, f.name)
        if value == getattr(default, f.name):
            continue
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        data[f.name] = value
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True) if data else ""
    from prtvoice.atomic import replace_small_file

    replace_small_file(path, text)


replace = dataclasses.replace  # `prtvoice config set` varies a Config with this
