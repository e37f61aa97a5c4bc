"""A listener's own variables file for `--vars FILE`: name, pain area, safety statements.

The file is a flat YAML mapping of names to scalar values::

    area: my lower back
    safety1: My back is strong. This sensation is safe.

Values are kept as the text the person wrote (``yes`` stays ``yes``, ``1.50``
stays ``1.50``), because they are spoken, not computed with. Precedence, applied
by the caller: script defaults < this file < ``--set``.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from prtvoice.errors import InputError, Problem, ScriptError

# The rule for a script's {placeholders}: a key no placeholder could name is a mistake.
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_BYTES = 1_000_000  # a variables file is a handful of lines; refuse anything huge
_NULL_TAG = "tag:yaml.org,2002:null"


def load_variables(path: Path) -> dict[str, str]:
    """Read a variables file: a mapping of names to scalar values, as strings.

    An empty file gives ``{}``. A missing or unreadable file raises InputError;
    a file that is not a flat mapping of names to values raises ScriptError
    holding every problem found, each at its FILE:LINE:COL.
    """
    path = Path(path)
    text = _read(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ScriptError.at(path, line, col, f"not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:  # pragma: no cover - every parser error carries a mark
        raise ScriptError.at(path, 1, 1, f"not valid YAML: {exc}") from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise ScriptError.at(
            path,
            *_place(root),
            "a variables file is a mapping of names to values",
            hint="for example:  area: my lower back",
        )
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for key_node, value_node in root.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str) or not _KEY.match(key):
            problems.append(
                Problem(
                    path,
                    *_place(key_node),
                    f"{_show(key_node)} is not a variable name",
                    "use letters, digits and _, starting with a letter (area, safety1)",
                )
            )
            continue
        if key in values:
            problems.append(Problem(path, *_place(key_node), f"{key!r} is given twice"))
            continue
        if not isinstance(value_node, yaml.ScalarNode):
            problems.append(
                Problem(
                    path,
                    *_place(value_node),
                    f"the value of {key!r} must be one piece of text",
                    "not a list or a mapping; quote it if it holds ':' or starts with '-'",
                )
            )
            continue
        if value_node.tag == _NULL_TAG and value_node.style is None:
            problems.append(
                Problem(
                    path,
                    *_place(value_node),
                    f"{key!r} has no value",
                    'write the text after the colon, or "" for an empty value',
                )
            )
            continue
        values[key] = value_node.value
    if problems:
        raise ScriptError(problems)
    return values


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise InputError(f"{path}: a variables file over {_MAX_BYTES} bytes is not plausible")
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such variables file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a variables file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the variables file ({exc.strerror})") from None


def _place(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _show(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value)
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
