"""The JSON Schema of the script format (editors' YAML language servers use it).

The loader (prtvoice.script) is the authority; the schema describes the same
format for editors: completion, hover text and early squiggles.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

SCHEMA_FILE = "script.schema.json"


@cache
def _text() -> str:
    return resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def schema() -> dict:
    """The JSON Schema (draft 2020-12) of a script file, as a fresh dict."""
    return json.loads(_text())
