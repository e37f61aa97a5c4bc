"""A shared script is untrusted input: what it cannot do, proven one by one.

tests/test_script.py covers the loader's sandbox (symlinks, FIFOs, devices,
`..`) and a few limits; the golden errors pin many messages. This file adds
what those do not: each refusal through the CLI (`error: FILE:LINE:COL: ...`,
exit 1, no traceback), that no script can run a command or pick the engine,
and the limits the planner enforces (4 h, events).
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prtvoice import names
from prtvoice.cli import app
from prtvoice.plan import MAX_EVENTS
from prtvoice.script import (
    MAX_CYCLES,
    MAX_FILE_BYTES,
    MAX_INCLUDE_DEPTH,
    MAX_INCLUDE_FILES,
    MAX_REPEAT,
    MAX_SAY_CHARS,
    MAX_STEPS,
)
from prtvoice.yamlsafe import MAX_DEPTH, MAX_NODES

runner = CliRunner()
HEAD = "prtvoice: 1\ntitle: Untrusted\nkind: custom\n"
PWNED = Path("/tmp/prtvoice-pwned")


def script_with(folder: Path, body: str, name: str = "s.yaml") -> Path:
    path = folder / name
    path.write_text(HEAD + textwrap.dedent(body), encoding="utf-8")
    return path


def steps(*lines: str) -> str:
    return "sections:\n  - title: A\n    steps:\n" + "".join(f"      - {line}\n" for line in lines)


def refused(command: str, path: Path, where: str, message: str) -> str:
    """Run `prtvoice COMMAND PATH`; it must fail with exit 1 and this located message."""
    result = runner.invoke(app, [command, str(path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    pattern = re.compile(rf"error: {re.escape(str(path))}:{where}: {message}")
    assert any(pattern.match(line) for line in lines), result.stderr
    return result.stderr


# ----- files a script may reach ---------------------------------------------------------


@pytest.mark.parametrize(
    "step, message",
    [
        ("include: /etc/passwd", "the included file '/etc/passwd' is an absolute path"),
        ("sound: /dev/zero", "the sound file '/dev/zero' is an absolute path"),
        ("include: ~/.ssh/id_rsa", "the included file '~/.ssh/id_rsa' is an absolute path"),
        ("sound: 'C:\\Windows\\win.ini'", r"the sound file 'C:\\Windows\\win.ini' is an absolute"),
        ("sound: ../../../etc/passwd", "the sound file '../../../etc/passwd' is outside"),
        ("include: parts/../../x.yaml", "the included file 'parts/../../x.yaml' is outside"),
        ("sound: link.wav", "the sound file 'link.wav' links to a file outside"),
        ("sound: zero.wav", "the sound file 'zero.wav' links to a file outside"),
        ("include: proc.yaml", "the included file 'proc.yaml' links to a file outside"),
        ('sound: "x\\0.wav"', r"'x\\x00.wav' is not a file name"),
    ],
)
def test_no_file_outside_the_folders_through_check(script_dir, tmp_path, step, message):
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    (script_dir / "link.wav").symlink_to(tmp_path / "secret.wav")
    (script_dir / "zero.wav").symlink_to("/dev/zero")
    (script_dir / "proc.yaml").symlink_to("/proc/self/environ")
    path = script_with(script_dir, steps(step))
    refused("check", path, r"7:\d+", message)


def test_ambience_file_is_sandboxed_too(script_dir):
    path = script_with(script_dir, "ambience: /dev/urandom\n" + steps("pause: 1s"))
    refused("check", path, "4:11", "the sound file '/dev/urandom' is an absolute path")


# ----- no command execution, no objects --------------------------------------------------


@pytest.mark.parametrize(
    "yaml_text",
    [
        "title: !!python/object/apply:os.system ['touch /tmp/prtvoice-pwned']",
        "title: !!python/object/new:subprocess.Popen [['touch', '/tmp/prtvoice-pwned']]",
        "title: !!python/name:os.system",
        "title: !!python/module:os",
        "title: !<tag:yaml.org,2002:python/object/apply:os.system> ['touch /tmp/prtvoice-pwned']",
    ],
)
def test_tags_that_build_objects_are_refused_and_run_nothing(script_dir, yaml_text):
    path = script_dir / "tag.yaml"
    path.write_text(yaml_text + "\nprtvoice: 1\nkind: custom\n" + steps("say: hi"))
    refused("check", path, r"1:8", "the YAML tag .* is not allowed")
    refused("outline", path, r"1:8", "the YAML tag .* is not allowed")
    assert not PWNED.exists()


@pytest.mark.parametrize(
    "body, where, message",
    [
        ("engine: command\n", "4:1", "unknown key 'engine'"),
        ("command: [sh, -c, 'touch /tmp/prtvoice-pwned']\n", "4:1", "unknown key 'command'"),
        ("voice: {engine: command}\n", r"4:\d+", "unknown voice key 'engine'"),
        ("voice: {command: [sh]}\n", r"4:\d+", "unknown voice key 'command'"),
    ],
)
def test_a_script_cannot_select_the_command_engine(script_dir, body, where, message):
    path = script_with(script_dir, body + steps("say: hi"))
    refused("check", path, where, message)


RECORDER = """\
import json, sys, wave
with open(sys.argv[1], "a") as log:
    log.write(json.dumps(sys.argv[2:]) + "\\n")
with wave.open(sys.argv[-1], "wb") as f:  # 0.2 s of a quiet tone
    f.setnchannels(1); f.setsampwidth(2); f.setframerate(22050)
    f.writeframes(b"".join((((i % 50) - 25) * 200).to_bytes(2, "little", signed=True)
                           for i in range(4410)))
"""

HOSTILE_TEXTS = [
    "$(touch /tmp/prtvoice-pwned)",
    "; touch /tmp/prtvoice-pwned",
    "`touch /tmp/prtvoice-pwned` && rm -rf x",
    "--output=/etc/passwd -x",
    "{{out}} {{voice}} {{text}}",  # literal braces: never placeholders of the command
    'it\'s "quoted" | piped > redirected',
]


def test_script_text_reaches_the_command_as_one_argument_never_a_shell(script_dir, tmp_path):
    """The user configured the command engine; a script's text cannot escape its argv slot."""
    recorder, log = tmp_path / "recorder.py", tmp_path / "argv.log"
    recorder.write_text(RECORDER)
    import os

    config = Path(os.environ["PRTVOICE_CONFIG"])
    config.write_text(
        "engine: command\n"
        f"command: [{json.dumps(sys.executable)}, {json.dumps(str(recorder))}, "
        f'{json.dumps(str(log))}, "--text={{text}}", "{{voice}}", "{{wpm}}", "{{out}}"]\n'
    )
    lines = [f"say: {json.dumps(text)}" for text in HOSTILE_TEXTS]
    path = script_with(script_dir, steps(*lines))
    result = runner.invoke(app, ["outline", str(path)])
    assert result.exit_code == 0, result.output
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    expected = [t.replace("{{", "{").replace("}}", "}") for t in HOSTILE_TEXTS]
    assert sorted(call[0] for call in calls) == sorted(f"--text={t}" for t in expected)
    for call in calls:
        assert len(call) == 4 and call[1] == "default" and call[2].isdigit()
        # {out} is ours: a file named by the clip's key in the bank's private folder.
        out = Path(call[3])
        assert out.parent.name.startswith("prtvoice-tts-")
        assert re.fullmatch(r"[0-9a-f]{64}\.wav", out.name)
    assert not PWNED.exists()


def test_a_script_voice_name_cannot_reach_the_command(script_dir, tmp_path):
    import os

    log = tmp_path / "argv.log"
    recorder = tmp_path / "recorder.py"
    recorder.write_text(RECORDER)
    Path(os.environ["PRTVOICE_CONFIG"]).write_text(
        f"engine: command\ncommand: [{json.dumps(sys.executable)}, {json.dumps(str(recorder))},"
        f' {json.dumps(str(log))}, "{{text}}", "{{voice}}", "{{out}}"]\n'
    )
    path = script_with(
        script_dir, "voice: {name: '$(touch /tmp/prtvoice-pwned)'}\n" + steps("say: hi")
    )
    result = runner.invoke(app, ["outline", str(path)])
    assert result.exit_code == 3, result.output  # ExitStatus.VOICE: no such voice
    assert "unknown voice '$(touch /tmp/prtvoice-pwned)'" in result.stderr
    assert not log.exists() and not PWNED.exists()  # the command never ran


# ----- the limits, each with its message ----------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "x" + "]" * depth


LIMITS = [
    # (name, body, where, message)
    (
        "alias expansion",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{i}: &a{i} [{', '.join(['*a' if i == 1 else f'*a{i - 1}'] * 10)}]\n"
                  for i in range(1, 7))
        + steps("say: *a6"),
        r"\d+:\d+",
        f"the YAML expands to more than {MAX_NODES} values",
    ),
    ("nesting", f"summary: {_nested(MAX_DEPTH + 1)}\n" + steps("say: hi"), r"4:\d+",
     f"the YAML is nested more than {MAX_DEPTH} levels deep"),
    ("repeat count", steps(f"{{repeat: {MAX_REPEAT + 1}, steps: [{{say: hi}}]}}"), r"7:\d+",
     f"`repeat` must be from 1 to {MAX_REPEAT}, not '{MAX_REPEAT + 1}'"),
    ("steps", steps("{repeat: 1000, steps: [{repeat: 1000, steps: [{pause: 1s}]}]}"), "7:9",
     f"the script has more than {MAX_STEPS} steps"),
    ("text length", steps("say: " + "word " * (MAX_SAY_CHARS // 5 + 1)), "7:14",
     f"this text is \\d+ characters long, over the limit of {MAX_SAY_CHARS}"),
    ("cycles", steps(f"breathe: {{pattern: box, cycles: {MAX_CYCLES + 1}}}"), r"7:\d+",
     f"`cycles` must be from 1 to {MAX_CYCLES}"),
    ("pause", steps("pause: 61m"), "7:16", "a pause of 1h1m is over the limit of 1h"),
    ("target", "duration: 4h1s\n" + steps("pause: 1s~"), "4:11",
     "a target duration of 4h1s is over the limit of 4h"),
]  # fmt: skip


@pytest.mark.parametrize("name, body, where, message", LIMITS, ids=[x[0] for x in LIMITS])
def test_each_loader_limit_through_check_and_outline(script_dir, name, body, where, message):
    path = script_with(script_dir, body)
    refused("check", path, where, message)
    refused("outline", path, where, message)


def test_document_size_limit(script_dir):
    path = script_with(script_dir, "# " + "x" * MAX_FILE_BYTES + "\n" + steps("say: hi"))
    refused("check", path, "1:1", f"the file is larger than {MAX_FILE_BYTES // 1024} KiB")


def test_include_depth_and_count_limits(script_dir):
    for level in range(MAX_INCLUDE_DEPTH + 2):
        (script_dir / f"d{level}.yaml").write_text(
            f"sections: [{{title: D, steps: [{{include: d{level + 1}.yaml}}]}}]\n"
            if level <= MAX_INCLUDE_DEPTH
            else "sections: [{title: D, steps: [{pause: 1s}]}]\n"
        )
    path = script_with(script_dir, steps("include: d0.yaml"))
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    deep = script_dir / f"d{MAX_INCLUDE_DEPTH - 1}.yaml"  # named where the chain goes too deep
    assert f"error: {deep}:1:41: includes are nested more than {MAX_INCLUDE_DEPTH} deep" in (
        result.stderr
    )
    for index in range(MAX_INCLUDE_FILES + 1):
        (script_dir / f"f{index}.yaml").write_text("sections: [{title: F, steps: [{pause: 1s}]}]\n")
    path = script_with(
        script_dir, steps(*(f"include: f{i}.yaml" for i in range(MAX_INCLUDE_FILES + 1)))
    )
    refused("check", path, r"\d+:\d+", f"a script may include at most {MAX_INCLUDE_FILES} files")


def test_session_length_limit_is_the_planners(script_dir):
    """Each step is fine alone; together they pass 4 h: `check` passes, `outline` refuses."""
    assert names.MAX_SESSION_SECONDS == 4 * 3600
    path = script_with(script_dir, steps("{repeat: 5, steps: [{pause: 50m}]}"))
    assert runner.invoke(app, ["check", str(path)]).exit_code == 0
    refused("outline", path, r"7:\d+", "the session runs over the limit of 4:00:00 at this step")


def test_event_limit_is_the_planners(script_dir):
    # 0.1 s phases: 4000 events a block, 13 blocks = 52000 events in 87 minutes.
    block = "breathe: {pattern: 0.1-0.1-0.1-0.1, cycles: 1000, cue: none}"
    path = script_with(script_dir, steps(*[block] * 13))
    assert 13 * 4 * MAX_CYCLES > MAX_EVENTS
    refused("outline", path, r"\d+:9", f"the session has more than {MAX_EVENTS} events")
