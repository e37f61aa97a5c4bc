"""The loader against the format contract (shared/script-format.md).

The golden files (tests/data/scripts, test_golden_errors.py) pin the exact
messages; these tests pin the resolved Script and the rules the goldens cannot
hold: the sandbox (symlinks, FIFOs, devices), overrides, odd inputs, speed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prtvoice import names
from prtvoice.durations import parse_duration
from prtvoice.errors import InputError, PrtvoiceError, ScriptError
from prtvoice.script import (
    MAX_STEPS,
    Breathe,
    Pause,
    Say,
    Sound,
    VoiceSettings,
    load_script,
)

HEAD = "prtvoice: 1\ntitle: Test\nkind: custom\n"


def write(folder: Path, name: str, body: str, *, head: bool = True) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((HEAD if head else "") + textwrap.dedent(body), encoding="utf-8")
    return path


def steps_of(body: str, folder: Path, **kwargs) -> list:
    path = write(folder, "s.yaml", "sections:\n  - title: A\n    steps:\n" +
                 textwrap.indent(textwrap.dedent(body), "      "))  # fmt: skip
    return list(load_script(path, **kwargs).sections[0].steps)


def problems(path: Path, **kwargs) -> list[str]:
    with pytest.raises(ScriptError) as caught:
        load_script(path, **kwargs)
    return [f"{p.line}:{p.col}: {p.message}" for p in caught.value.problems]


# ----- durations ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3s", 3.0), ("1.5s", 1.5), ("750ms", 0.75), ("2m", 120.0), ("1m30s", 90.0),
        ("1h", 3600.0), ("1h5m", 3900.0), ("90", 90.0), ("5 s", 5.0), (" 2 min ", 120.0),
        ("1h 2m 3s", 3723.0), (".5s", 0.5), (12, 12.0), (2.5, 2.5), ("0s", 0.0),
    ],
)  # fmt: skip
def test_parse_duration_accepts_the_contract_forms(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["-5s", "5x", "30s1m", "1m1m", "", "s", "1..5s", float("nan"), float("inf"), True]
)
def test_parse_duration_refuses_nonsense_with_an_input_error(text):
    with pytest.raises(InputError):
        parse_duration(text)


# ----- the resolved script -------------------------------------------------------


def test_top_level_defaults(script_dir):
    path = write(script_dir, "My Session.yaml", "sections: [{title: A, steps: [{say: hi}]}]\n")
    script = load_script(path)
    assert script.id == "my-session"  # the file stem, made into a valid id
    assert script.language == "en"
    assert script.summary == ""
    assert script.duration is None and script.duration_where is None
    assert script.ambience is None
    assert script.voice == VoiceSettings()
    assert script.where.line == 1


def test_every_top_level_field(script_dir):
    path = write(script_dir, "full.yaml", """\
        id: my-id
        summary: One line.
        language: de
        duration: 8m
        voice: {name: en-us, rate: 0.85, volume: 0.9}
        ambience: {sound: brown-noise, level: -20dB}
        variables: {name: friend}
        sections: [{title: A, steps: [{say: "Hi {name}"}]}]
        """)  # fmt: skip
    script = load_script(path)
    assert (script.id, script.summary, script.language) == ("my-id", "One line.", "de")
    assert script.duration == 480.0
    assert script.duration_where.line == 7
    assert script.voice == VoiceSettings("en-us", 0.85, 0.9)
    assert script.ambience.sound.name == "brown-noise" and script.ambience.sound.builtin
    assert script.ambience.gain == pytest.approx(0.1)
    assert script.sections[0].steps[0].text == "Hi friend"


def test_inline_pauses_split_a_say_into_say_pause_say(script_dir):
    steps = steps_of("- say: One. [2s] Two. [750ms~] Three.\n", script_dir)
    assert [type(s) for s in steps] == [Say, Pause, Say, Pause, Say]
    assert [s.text for s in steps if isinstance(s, Say)] == ["One.", "Two.", "Three."]
    assert (steps[1].seconds, steps[1].flexible) == (2.0, False)
    assert (steps[3].seconds, steps[3].flexible) == (0.75, True)


def test_fixed_and_flexible_pauses(script_dir):
    steps = steps_of("- pause: 5s\n- pause: 5s~\n- pause: 1m30s ~\n", script_dir)
    assert [(s.seconds, s.flexible) for s in steps] == [(5, False), (5, True), (90, True)]


def test_say_voice_merges_field_by_field_with_the_script_voice(script_dir):
    path = write(script_dir, "v.yaml", """\
        voice: {name: en-us, rate: 0.8}
        sections:
          - title: A
            steps:
              - say: {text: Slow, voice: {volume: 0.5}}
              - breathe: {pattern: box, cycles: 1, voice: {name: en-gb}}
              - say: Plain
        """)  # fmt: skip
    slow, breathe, plain = load_script(path).sections[0].steps
    assert slow.voice == VoiceSettings("en-us", 0.8, 0.5)
    assert breathe.voice == VoiceSettings("en-gb", 0.8, 1.0)
    assert plain.voice == VoiceSettings("en-us", 0.8, 1.0)


def test_overrides_win_over_script_variables_and_define_new_ones(script_dir):
    path = write(script_dir, "o.yaml", """\
        variables: {area: back, name: friend}
        sections: [{title: A, steps: [{say: "{name}, your {area}. {extra}"}]}]
        """)  # fmt: skip
    script = load_script(path, overrides={"area": "neck", "extra": "Rest."})
    assert script.sections[0].steps[0].text == "friend, your neck. Rest."
    assert script.variables == {"area": "neck", "name": "friend", "extra": "Rest."}


def test_undefined_variable_names_it_with_did_you_mean(script_dir):
    path = write(script_dir, "u.yaml", """\
        variables: {area: back}
        sections: [{title: A, steps: [{say: "your {aera}"}]}]
        """)  # fmt: skip
    with pytest.raises(ScriptError) as caught:
        load_script(path)
    assert caught.value.message == "undefined variable {aera}"
    assert caught.value.hint == "did you mean 'area'?"
    assert (caught.value.line, caught.value.col) == (5, 31)


def test_an_override_fixes_an_undefined_variable(script_dir):
    path = write(script_dir, "u.yaml", "sections: [{title: A, steps: [{say: 'hi {who}'}]}]\n")
    assert load_script(path, overrides={"who": "Sam"}).sections[0].steps[0].text == "hi Sam"


def test_literal_braces(script_dir):
    (step,) = steps_of("- say: 'a {{b}} c'\n", script_dir)
    assert step.text == "a {b} c"


def test_repeat_unrolls_with_round_and_count_and_inner_shadows_outer(script_dir):
    steps = steps_of("""\
        - repeat: 2
          steps:
            - say: "o{n}/{count}"
            - repeat: 2
              steps: [{say: "i{n}/{count}"}]
        """, script_dir)  # fmt: skip
    assert [s.text for s in steps] == ["o1/2", "i1/2", "i2/2", "o2/2", "i1/2", "i2/2"]


def test_breathe_for_rounds_to_the_nearest_whole_cycle_at_least_one(script_dir):
    steps = steps_of("""\
        - breathe: {pattern: 4-2-6, for: 1m}
        - breathe: {pattern: 4-2-6, for: 63s}
        - breathe: {pattern: 4-2-6, for: 66s}
        - breathe: {pattern: box, for: 1s}
        """, script_dir)  # fmt: skip
    assert [s.cycles for s in steps] == [5, 5, 6, 1]  # 12 s cycles: 5, 5.25, 5.5 -> 6, ->1
    assert all(isinstance(s, Breathe) and s.cue == "tone" for s in steps)


@pytest.mark.parametrize(("name", "phases"), list(names.BREATH_PATTERNS.items()))
def test_named_breathing_patterns(script_dir, name, phases):
    (step,) = steps_of(f"- breathe: {{pattern: {name}, cycles: 2, cue: Voice}}\n", script_dir)
    assert (step.inhale, step.hold, step.exhale, step.hold_after) == phases
    assert step.cue == "voice"


def test_sounds_resolve_next_to_the_script_then_in_the_library(script_dir, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    (library / "gong.ogg").write_bytes(b"OggS")
    (library / "both.wav").write_bytes(b"lib")
    (script_dir / "both.wav").write_bytes(b"own")
    steps = steps_of("- sound: bell\n- sound: gong.ogg\n- sound: both.wav\n", script_dir,
                     audio_dirs=[library])  # fmt: skip
    assert steps[0].sound.builtin and steps[0].sound.name == "bell"
    assert steps[1].sound.path == (library / "gong.ogg").resolve()
    assert steps[2].sound.path == (script_dir / "both.wav").resolve()  # the script's own wins
    assert all(isinstance(s, Sound) for s in steps)


def test_include_inlines_steps_with_variables_as_defaults(script_dir):
    write(script_dir, "parts/p.yaml", """\
        variables: {who: part, where: here}
        sections:
          - {title: P1, steps: [{say: "{who} {where} {n}"}]}
          - {title: P2, steps: [{sound: parts-bell.wav}]}
        """, head=False)  # fmt: skip
    (script_dir / "parts" / "parts-bell.wav").write_bytes(b"RIFF")
    path = write(script_dir, "main.yaml", """\
        variables: {who: main}
        sections:
          - title: A
            steps:
              - repeat: 2
                steps: [{include: parts/p.yaml}]
        """)  # fmt: skip
    steps = load_script(path).sections[0].steps
    assert [getattr(s, "text", None) for s in steps] == ["main here 1", None, "main here 2", None]
    assert steps[1].sound.path == (script_dir / "parts" / "parts-bell.wav").resolve()
    assert steps[0].where.file == script_dir / "parts" / "p.yaml"


def test_problems_in_an_included_file_name_that_file_after_the_includers(script_dir):
    write(script_dir, "parts/bad.yaml", "sections: [{title: P, steps: [{pause: x}]}]\n",
          head=False)  # fmt: skip
    path = write(script_dir, "main.yaml", """\
        kindd: x
        sections: [{title: A, steps: [{include: parts/bad.yaml}, {sound: nope}]}]
        """)  # fmt: skip
    with pytest.raises(ScriptError) as caught:
        load_script(path)
    files = [p.file.name for p in caught.value.problems]
    assert files == ["main.yaml", "main.yaml", "bad.yaml"]
    lines = [p.line for p in caught.value.problems]
    assert lines[:2] == sorted(lines[:2])


def test_include_cycle_names_the_chain(script_dir):
    write(script_dir, "a.yaml", "sections: [{title: A, steps: [{include: b.yaml}]}]\n")
    write(script_dir, "b.yaml", "sections: [{title: B, steps: [{include: a.yaml}]}]\n",
          head=False)  # fmt: skip
    with pytest.raises(ScriptError) as caught:
        load_script(script_dir / "a.yaml")
    assert caught.value.message == "include cycle: a.yaml -> b.yaml -> a.yaml"
    assert caught.value.file == script_dir / "b.yaml"


def test_every_problem_is_reported_in_file_order(script_dir):
    path = write(script_dir, "many.yaml", """\
        sections:
          - title: A
            steps:
              - pause: -1s
              - sound: bel
              - say: "{x}"
              - breathe: {pattern: nope, cycles: 1}
        duration: 0s
        """)  # fmt: skip
    found = problems(path)
    assert len(found) == 5
    assert [int(p.split(":")[0]) for p in found] == [7, 8, 9, 10, 11]


# ----- the sandbox -----------------------------------------------------------------


def test_symlink_out_of_the_folder_is_refused(script_dir, tmp_path):
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"x")
    (script_dir / "link.wav").symlink_to(outside)
    (script_dir / "inc.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    (tmp_path / "elsewhere.yaml").write_text("sections: [{title: X, steps: []}]\n")
    path = write(
        script_dir,
        "s.yaml",
        "sections: [{title: A, steps: [{sound: link.wav}, {include: inc.yaml}]}]\n",
    )
    found = problems(path)
    assert found == [
        "4:39: the sound file 'link.wav' links to a file outside the folders a script may use",
        "4:60: the included file 'inc.yaml' links to a file outside the folders a script may use",
    ]


def test_symlink_inside_the_folder_is_fine(script_dir):
    (script_dir / "real.wav").write_bytes(b"x")
    (script_dir / "alias.wav").symlink_to(script_dir / "real.wav")
    (step,) = steps_of("- sound: alias.wav\n", script_dir)
    assert step.sound.path == (script_dir / "real.wav").resolve()


def test_fifo_and_device_are_refused(script_dir):
    os.mkfifo(script_dir / "pipe.wav")
    (script_dir / "dev.wav").symlink_to("/dev/zero")
    path = write(
        script_dir,
        "s.yaml",
        "sections: [{title: A, steps: [{sound: pipe.wav}, {include: pipe.wav}]}]\n",
    )
    assert problems(path) == [
        "4:39: the sound file 'pipe.wav' is not a regular file",
        "4:60: the included file 'pipe.wav' is not a regular file",
    ]
    library = Path("/dev")  # a device reached through the sound library
    path = write(script_dir, "d.yaml", "sections: [{title: A, steps: [{sound: null.wav}]}]\n")
    assert problems(path, audio_dirs=[library]) == [
        "4:39: the sound file 'null.wav' was not found next to the script or in the sound library"
    ]
    path = write(script_dir, "z.yaml", "sections: [{title: A, steps: [{sound: dev.wav}]}]\n")
    assert problems(path) == [
        "4:39: the sound file 'dev.wav' links to a file outside the folders a script may use"
    ]


def test_dotdot_inside_the_tree_is_fine_but_not_out_of_it(script_dir):
    (script_dir / "top.wav").write_bytes(b"x")
    write(script_dir, "parts/p.yaml", "sections: [{title: P, steps: [{sound: ../top.wav}]}]\n",
          head=False)  # fmt: skip
    path = write(script_dir, "s.yaml", "sections: [{title: A, steps: [{include: parts/p.yaml}]}]\n")
    (step,) = load_script(path).sections[0].steps
    assert step.sound.path == (script_dir / "top.wav").resolve()
    path = write(script_dir, "s.yaml", "sections: [{title: A, steps: [{include: ../s.yaml}]}]\n")
    assert problems(path) == [
        "4:41: the included file '../s.yaml' is outside the folders a script may use"
    ]


# ----- files that are not scripts ------------------------------------------------------


def test_missing_file_and_folder_are_script_errors_at_1_1(script_dir):
    with pytest.raises(ScriptError) as caught:
        load_script(script_dir / "missing.yaml")
    assert (caught.value.line, caught.value.col, caught.value.message) == (1, 1, "no such file")
    with pytest.raises(ScriptError) as caught:
        load_script(script_dir)
    assert caught.value.message == "this is a folder, not a script file"


def test_a_file_over_1_mib_is_refused_before_parsing(script_dir):
    path = script_dir / "big.yaml"
    path.write_text(HEAD + "# " + "x" * (1 << 20) + "\n")
    assert problems(path) == ["1:1: the file is larger than 1024 KiB"]


def test_a_bom_is_fine(script_dir):
    path = script_dir / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + (HEAD + "sections: [{title: A, steps: []}]\n").encode())
    assert load_script(path).title == "Test"


def test_billion_laughs_is_refused_quickly(script_dir):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    path = script_dir / "bomb.yaml"
    path.write_text(HEAD + "\n".join(lines) + "\nsections: [{title: A, steps: [{say: *a11}]}]\n")
    started = time.perf_counter()
    found = problems(path)
    assert time.perf_counter() - started < 2.0
    assert len(found) == 1 and "expands to more than 100000 values" in found[0]


def test_yaml_without_aliases_reads_as_with_the_alias_copy():
    # Without aliases read_yaml skips the copying pass; the tree must be the same
    # as the copy makes, and the node limit must still hold.
    from prtvoice import yamlsafe

    text = "a: &x [1, {b: two}]\nc: [3, 'four', null]\n"
    file = Path("t.yaml")
    composed, nodes, aliases = yamlsafe._compose(text, file=file, max_depth=yamlsafe.MAX_DEPTH)
    copied = yamlsafe._expand(composed, file=file, max_nodes=yamlsafe.MAX_NODES,
                              max_depth=yamlsafe.MAX_DEPTH)  # fmt: skip
    assert (nodes, aliases) == (12, 0)

    def shape(node):
        if isinstance(node, yamlsafe.YScalar):
            return (node.value, node.raw, node.tag, node.line, node.col)
        if isinstance(node, yamlsafe.YSeq):
            return ("seq", node.line, node.col, [shape(i) for i in node.items])
        return ("map", node.line, node.col, [(shape(k), shape(v)) for k, v in node.items])

    assert shape(yamlsafe.read_yaml(text, file=file)) == shape(copied)
    assert all(isinstance(pair, tuple) for pair in yamlsafe.read_yaml(text, file=file).items)
    with pytest.raises(ScriptError, match="expands to more than 11 values"):
        yamlsafe.read_yaml(text, file=file, max_nodes=11)


def test_too_many_steps_stops_early(script_dir):
    path = write(script_dir, "r.yaml", """\
        sections:
          - title: A
            steps:
              - repeat: 1000
                steps: [{repeat: 1000, steps: [{repeat: 1000, steps: [{say: hi}]}]}]
        """)  # fmt: skip
    started = time.perf_counter()
    found = problems(path)
    assert time.perf_counter() - started < 2.0
    assert found == [
        f"7:9: the script has more than {MAX_STEPS} steps once repeats and includes are unrolled"
    ]


# ----- no input gives anything but ScriptError ------------------------------------------

TOKENS = [
    *"ab01 -:{}[],&*!~?#|>'\"\n\t.5smh%",
    *("say", "pause", "sections", "steps", "repeat", "breathe", "include", "{n}", "\n  "),
]
yaml_ish = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(body=yaml_ish)
def test_fuzz_never_raises_anything_but_script_error(script_dir, body):
    path = script_dir / "fuzz.yaml"
    path.write_text(HEAD + "sections:\n  - title: A\n    steps:\n      - " + body, "utf-8")
    try:
        load_script(path)
    except ScriptError as exc:
        assert all(p.line >= 1 and p.col >= 1 for p in exc.problems)


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(["5s", "5s~", "box", "4-2-6", "bell", "x.wav", "../x.wav", "{n}", "tone"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["say", "pause", "sound", "breathe", "repeat", "steps", "include",
                         "pattern", "cycles", "for", "cue", "voice", "text", "rate", "title"]),
        inner, max_size=3),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(steps=st.lists(values, max_size=4), top=st.dictionaries(
    st.sampled_from(["title", "kind", "id", "duration", "voice", "ambience", "variables",
                     "language", "summary", "prtvoice"]), values, max_size=4))  # fmt: skip
def test_fuzz_structures_never_raise_anything_but_script_error(script_dir, steps, top):
    import yaml

    document = {"prtvoice": 1, "title": "T", "kind": "custom", **top,
                "sections": [{"title": "A", "steps": steps}]}  # fmt: skip
    path = script_dir / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), "utf-8")
    try:
        load_script(path)
    except PrtvoiceError as exc:
        assert isinstance(exc, ScriptError)


def test_check_starts_fast_without_heavy_imports(tmp_path):
    """`prtvoice check` must stay well under 0.5 s: the loader imports no numpy."""
    code = (
        "import sys, time; t = time.perf_counter();"
        "from prtvoice.script import load_script;"
        "load_script(__import__('pathlib').Path(sys.argv[1]));"
        "assert 'numpy' not in sys.modules, 'numpy imported';"
        "print(time.perf_counter() - t)"
    )
    script = Path(__file__).parent / "data" / "scripts" / "good-all-steps.yaml"
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, str(script)], capture_output=True,
                         text=True, check=True)  # fmt: skip
    total = time.perf_counter() - started
    assert float(out.stdout) < 0.25
    assert total < 0.5
