"""variables.load_variables: the listener's own `--vars FILE`."""

from __future__ import annotations

from pathlib import Path

import pytest

from prtvoice.errors import ExitStatus, InputError, ScriptError
from prtvoice.variables import load_variables


def write(tmp_path: Path, text: str, name: str = "me.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_a_flat_mapping_as_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# my values\n"
        "name: Sam\n"
        "area: my lower back\n"
        "safety1: 'My back is strong: this is safe.'\n"
        "count: 3\n"
        "price: 1.50\n"
        "answer: yes\n"
        "blank: ''\n",
    )
    assert load_variables(path) == {
        "name": "Sam",
        "area": "my lower back",
        "safety1": "My back is strong: this is safe.",
        "count": "3",
        "price": "1.50",  # the text as written: it is spoken, not computed with
        "answer": "yes",
        "blank": "",
    }


def test_block_text_and_unicode(tmp_path: Path) -> None:
    path = write(tmp_path, "safety2: >-\n  Mein Rücken ist stark.\n  Das ist sicher.\n")
    assert load_variables(path) == {"safety2": "Mein Rücken ist stark. Das ist sicher."}


def test_empty_file_gives_no_variables(tmp_path: Path) -> None:
    assert load_variables(write(tmp_path, "# nothing yet\n")) == {}


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such variables file") as info:
        load_variables(tmp_path / "absent.yaml")
    assert info.value.exit_status == ExitStatus.INPUT


def test_a_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"):
        load_variables(tmp_path)


def test_not_utf8_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("area: Rücken\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        load_variables(path)


def test_a_list_at_the_top_points_at_it(tmp_path: Path) -> None:
    path = write(tmp_path, "- area\n- back\n")
    with pytest.raises(ScriptError) as info:
        load_variables(path)
    assert str(info.value) == (
        f"{path}:1:1: a variables file is a mapping of names to values"
        " (for example:  area: my lower back)"
    )


def test_bad_yaml_reports_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "area: back\nname: 'Sam\n")
    with pytest.raises(ScriptError) as info:
        load_variables(path)
    assert info.value.file == path
    assert info.value.line == 3  # where the parser ran out: the unclosed quote
    assert info.value.message.startswith("not valid YAML")


def test_every_problem_is_reported_with_its_place(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "area: back\n"  # fine
        "safety: [one, two]\n"  # a list
        "my name: Sam\n"  # a space in the key
        "area: neck\n"  # twice
        "name:\n"  # no value
        "nested:\n  a: b\n",  # a mapping
    )
    with pytest.raises(ScriptError) as info:
        load_variables(path)
    places = [(p.line, p.col, p.message) for p in info.value.problems]
    assert places == [
        (2, 9, "the value of 'safety' must be one piece of text"),
        (3, 1, "'my name' is not a variable name"),
        (4, 1, "'area' is given twice"),
        (5, 6, "'name' has no value"),
        (7, 3, "the value of 'nested' must be one piece of text"),
    ]
    assert all(p.file == path for p in info.value.problems)


def test_aliases_of_scalars_are_fine_and_of_mappings_are_not(tmp_path: Path) -> None:
    ok = write(tmp_path, "area: &a lower back\nwhere: *a\n", "ok.yaml")
    assert load_variables(ok) == {"area": "lower back", "where": "lower back"}
    bad = write(tmp_path, "base: &b {x: 1}\n", "bad.yaml")
    with pytest.raises(ScriptError, match="must be one piece of text"):
        load_variables(bad)


def test_several_documents_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "area: back\n---\narea: neck\n")
    with pytest.raises(ScriptError, match="not valid YAML"):
        load_variables(path)


def test_keys_follow_the_placeholder_rule(tmp_path: Path) -> None:
    # {pain-area} could never be a placeholder in a script, so the key is a mistake.
    path = write(tmp_path, "pain_area: back\npain-area: neck\n")
    with pytest.raises(ScriptError) as info:
        load_variables(path)
    assert [(p.line, p.message) for p in info.value.problems] == [
        (2, "'pain-area' is not a variable name")
    ]
