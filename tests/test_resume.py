"""Resume positions: per script, atomic, forgiving of a damaged file."""

from __future__ import annotations

import json
from pathlib import Path

from prtvoice import paths, resume


def test_save_load_clear(tmp_path):
    script = tmp_path / "a.yaml"
    assert resume.load("calm", script) is None
    resume.save("calm", script, section=2, title="Body", frame=12345)
    point = resume.load("calm", script)
    assert (point.section, point.title, point.frame) == (2, "Body", 12345)
    assert resume.positions_file() == paths.state_dir() / "positions.json"
    resume.clear("calm", script)
    assert resume.load("calm", script) is None


def test_scripts_are_kept_apart_by_id_and_path(tmp_path):
    one, two = tmp_path / "one" / "s.yaml", tmp_path / "two" / "s.yaml"
    resume.save("s", one, section=1, title="A", frame=1)
    resume.save("s", two, section=3, title="C", frame=3)
    resume.save("other", one, section=0, title="X", frame=0)
    assert resume.load("s", one).section == 1
    assert resume.load("s", two).section == 3
    resume.clear("s", one)
    assert resume.load("s", one) is None
    assert resume.load("s", two).section == 3


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
    resume.save("s", tmp_path / "s.yaml", section=1, title="A", frame=1)
    folder = resume.positions_file().parent
    assert [p.name for p in folder.iterdir()] == ["positions.json"]
    assert json.loads(resume.positions_file().read_text())  # whole, valid JSON


def test_a_damaged_file_reads_as_nothing_and_is_replaced(tmp_path):
    file = resume.positions_file()
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("{not json")
    assert resume.load("s", tmp_path / "s.yaml") is None
    resume.save("s", tmp_path / "s.yaml", section=1, title="A", frame=5)
    assert resume.load("s", tmp_path / "s.yaml").frame == 5


def test_resume_section_follows_the_title_when_the_script_changed():
    point = resume.ResumePoint(section=1, title="Body", frame=0, saved_at=0)
    assert resume.resume_section(point, ["Arrive", "Body", "Close"]) == 1
    assert resume.resume_section(point, ["Arrive", "Breath", "Body", "Close"]) == 2
    assert resume.resume_section(point, ["Only"]) == 0
    assert resume.resume_section(None, ["Arrive"]) == 0


def test_key_uses_the_resolved_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resume.script_key("s", Path("s.yaml")) == resume.script_key("s", tmp_path / "s.yaml")
