"""templates.new_script: every starting point is a valid script, ready to edit."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prtvoice import paths
from prtvoice.errors import InputError
from prtvoice.names import KINDS
from prtvoice.script import load_script
from prtvoice.templates import TEMPLATE_PREFIX, new_script, session_ids, template_path

LIBRARY = paths.bundled_scripts_dir()


def save_and_load(text: str, folder: Path, name: str = "mine.yaml"):
    # Saved in a fresh folder, away from scripts/parts: the file must stand alone.
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return load_script(path, overrides={}, audio_dirs=[])


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_template_that_loads(kind: str, tmp_path: Path) -> None:
    text = new_script(f"{TEMPLATE_PREFIX}{kind}", library=LIBRARY)
    assert text == template_path(kind).read_text(encoding="utf-8")
    assert text.startswith("# A new prtvoice script")  # commented, so it teaches as it goes
    script = save_and_load(text, tmp_path)
    assert script.kind == kind
    assert script.id == "mine"  # ids come from the file name the therapist picks
    assert len(script.sections) >= 2


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in session_ids(LIBRARY)])
def test_a_plain_kind_name_gives_its_template(kind: str) -> None:
    assert new_script(kind, library=LIBRARY) == template_path(kind).read_text(encoding="utf-8")


@pytest.mark.parametrize("session_id", session_ids(LIBRARY))
def test_every_bundled_session_copies_to_a_standalone_script(
    session_id: str, tmp_path: Path
) -> None:
    original = load_script(LIBRARY / f"{session_id}.yaml", overrides={}, audio_dirs=[])
    text = new_script(session_id, library=LIBRARY)
    assert text.startswith(f"# Made with `prtvoice new` from the bundled session {session_id!r}.")
    assert "include:" not in text  # shared parts are copied in
    copy = save_and_load(text, tmp_path)
    # The copy says and does exactly what the bundled session does.
    assert copy.kind == original.kind
    assert copy.title == original.title
    assert copy.duration == original.duration
    assert [s.title for s in copy.sections] == [s.title for s in original.sections]
    assert _spoken(copy) == _spoken(original)


def _spoken(script) -> list[tuple]:
    return [
        (type(step).__name__, getattr(step, "text", None), getattr(step, "seconds", None))
        for section in script.sections
        for step in section.steps
    ]


def test_a_session_id_wins_over_a_kind_and_the_prefix_picks_the_template() -> None:
    # "grounding" is both the bundled session and a kind.
    assert "grounding" in session_ids(LIBRARY)
    assert new_script("grounding", library=LIBRARY).startswith("# Made with `prtvoice new`")
    template = new_script("template:grounding", library=LIBRARY)
    assert template == template_path("grounding").read_text(encoding="utf-8")


def test_title_is_replaced_and_stays_one_safe_line(tmp_path: Path) -> None:
    title = 'Für Sam: "back" # not a comment\nsecond line'
    text = new_script("somatic-tracking-micro", title=title, library=LIBRARY)
    script = save_and_load(text, tmp_path)
    assert script.title == 'Für Sam: "back" # not a comment second line'
    template = new_script("breathing", title="Evening breath", library=LIBRARY)
    assert yaml.safe_load(template)["title"] == "Evening breath"


def test_parts_are_not_offered_as_sessions() -> None:
    ids = session_ids(LIBRARY)
    assert "opening" not in ids and "closing" not in ids
    with pytest.raises(InputError):
        new_script("parts/opening", library=LIBRARY)


def test_unknown_names_say_what_is_close() -> None:
    with pytest.raises(InputError, match=r"did you mean somatic-tracking"):
        new_script("somatic-traking", library=LIBRARY)
    with pytest.raises(InputError, match=r"no kind named 'breath'.*did you mean breathing"):
        new_script("template:breath", library=LIBRARY)


def test_works_without_a_library(tmp_path: Path) -> None:
    assert new_script("custom", library=tmp_path / "absent").startswith("# A new prtvoice script")
