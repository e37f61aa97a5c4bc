"""The JSON Schema agrees with the loader on the golden and bundled scripts."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml
from regen_golden import SCRIPTS, golden_cases, is_bad

from prtvoice.schema import schema

REPO = Path(__file__).resolve().parent.parent
GOOD = [p for p in golden_cases() if not is_bad(p)] + sorted((REPO / "scripts").glob("*.yaml"))
# Bad cases whose fault the schema can see (the rest need the loader: files, variables...).
SCHEMA_VISIBLE = [
    "bad-version", "bad-version-text", "bad-missing-keys", "bad-unknown-keys", "bad-kind",
    "bad-id", "bad-voice", "bad-ambience", "bad-ambience-level", "bad-step-shape",
    "bad-breathe", "bad-repeat", "bad-sections", "bad-section-shape",
    "bad-durations", "bad-sounds", "bad-flexible",
]  # fmt: skip


@pytest.fixture(scope="module")
def validator():
    return jsonschema.Draft202012Validator(schema())


def test_schema_is_a_valid_draft_2020_12_schema():
    document = schema()
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$schema"].endswith("2020-12/schema")
    assert document["properties"]["prtvoice"]["description"]


def test_schema_returns_a_fresh_copy():
    schema()["title"] = "changed"
    assert schema()["title"] != "changed"


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_good_scripts_validate(validator, path):
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [e.message for e in validator.iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize("name", SCHEMA_VISIBLE)
def test_bad_scripts_are_rejected(validator, name):
    document = yaml.safe_load((SCRIPTS / f"{name}.yaml").read_text(encoding="utf-8"))
    assert not validator.is_valid(document)
