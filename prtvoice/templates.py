"""Starting points for a therapist's own script: `prtvoice new FILE --from ID|KIND`.

`new_script` returns YAML text and never writes a file. It starts either from
a bundled session (its text with a header comment, shared parts copied in so
the new file stands on its own wherever it is saved) or from the commented
template of a kind (prtvoice/templates/<kind>.yaml). Every result is a valid
script.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import yaml

from prtvoice.errors import InputError
from prtvoice.names import KINDS

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_PREFIX = "template:"  # forces a kind's template when a session has the same id

# `- include: parts/x.yaml` on a line of its own, as the bundled library writes it.
_INCLUDE = re.compile(r"^(?P<indent>[ \t]*)- include:[ \t]*(?P<target>\S+)[ \t]*(?:#.*)?$")
_TITLE = re.compile(r"^title:.*$", re.MULTILINE)


def template_path(kind: str) -> Path:
    """The commented template file of `kind` (one of names.KINDS)."""
    return TEMPLATES_DIR / f"{kind}.yaml"


def new_script(kind_or_id: str, *, title: str | None = None, library: Path | None = None) -> str:
    """YAML text of a new script, ready to edit and save.

    `kind_or_id` names a bundled session id (a file stem in `library`, by
    default the bundled scripts folder) or a kind; a session id wins when both
    match, and ``template:KIND`` always picks the kind's template. `title`, when
    given, replaces the script's title. Unknown names raise InputError with the
    closest known names.
    """
    from prtvoice import paths  # lazy: keeps `--help` fast

    library = paths.bundled_scripts_dir() if library is None else Path(library)
    name = kind_or_id.strip()
    if name.startswith(TEMPLATE_PREFIX):
        kind = name[len(TEMPLATE_PREFIX) :]
        if kind not in KINDS:
            raise InputError(_unknown(kind, list(KINDS), what="kind"))
        text = _from_template(kind)
    elif name in session_ids(library):
        text = _from_session(library / f"{name}.yaml", session_id=name)
    elif name in KINDS:
        text = _from_template(name)
    else:
        known = list(KINDS) + session_ids(library)
        raise InputError(_unknown(name, known, what="session id or kind"))
    if title is not None:
        # JSON strings are valid YAML double-quoted scalars: any title stays one safe line.
        line = f"title: {json.dumps(' '.join(title.split()), ensure_ascii=False)}"
        text = _TITLE.sub(lambda _: line, text, count=1)
    return text


def session_ids(library: Path) -> list[str]:
    """Ids of the sessions in `library` (parts/ holds pieces, not sessions)."""
    if not library.is_dir():
        return []
    return sorted(p.stem for p in library.glob("*.yaml") if p.is_file())


def _from_template(kind: str) -> str:
    return template_path(kind).read_text(encoding="utf-8")


def _from_session(path: Path, *, session_id: str) -> str:
    header = (
        f"# Made with `prtvoice new` from the bundled session {session_id!r}.\n"
        "# Edit freely: `prtvoice check FILE` validates it, `prtvoice outline FILE` shows\n"
        "# its timeline. Shared parts (opening, closing) are copied in below, so this file\n"
        "# works wherever you save it. The guide: docs/writing-scripts.md.\n"
    )
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _INCLUDE.match(line)
        if match:
            lines.append(_inlined(path.parent, match["target"], match["indent"]))
        else:
            lines.append(line)
    return header + "\n".join(lines) + "\n"


def _inlined(folder: Path, target: str, indent: str) -> str:
    """The steps of an included part, as YAML at the include's indent."""
    part = folder / target
    if not part.is_file():  # leave a broken include for `check` to report, with its place
        return f"{indent}- include: {target}"
    document = yaml.safe_load(part.read_text(encoding="utf-8"))
    steps = [step for section in document["sections"] for step in section["steps"]]
    body = yaml.safe_dump(
        steps, sort_keys=False, allow_unicode=True, width=4096, default_flow_style=False
    )
    copied = [f"{indent}# (from {target})"]
    copied += [f"{indent}{line}" if line else line for line in body.splitlines()]
    return "\n".join(copied)


def _unknown(name: str, known: list[str], *, what: str) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"no {what} named {name!r}{hint} (kinds: {', '.join(KINDS)})"
