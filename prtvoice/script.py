"""YAML file -> Script: the validating loader for the format (shared/script-format.md).

The Script this returns is fully resolved: variables substituted, `repeat`
unrolled, `include` inlined, inline pauses split out, breathing patterns and
`for:` turned into numbers, sound references checked and turned into paths.
The planner never sees YAML.

Beyond the contract, the loader accepts (documented in the JSON Schema too):
- inline flexible pauses `[2s~]`; only a bracket starting with a number is a
  pause, so `[laughs]` stays text; variables are filled in after the split,
  so a variable's value never adds pauses;
- `voice: en-gb` and `ambience: brown-noise` as shorthands (the bed at -30dB);
  an ambience level as a factor (`0.25`) or a percentage (`25%`);
- breathing patterns `in-out` (`5.5-5.5`) and lists (`[4, 2, 6]`); `cue: off`;
- long unit names (`2 min`, `30 sec`) and a space before the unit (`5 s`);
- an included file may be a whole script or just `sections:` (plus optional
  `variables:` and `voice:`, which are defaults under the includer's); its
  other top-level keys are checked but only matter when it runs alone.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

from prtvoice import names
from prtvoice.durations import (
    DURATION_HINT,
    NUMBER_PATTERN,
    DurationProblem,
    length_text,
    seconds_of,
    show,
)
from prtvoice.errors import Problem, ScriptError
from prtvoice.yamlsafe import YMap, YNode, YScalar, YSeq, read_yaml


@dataclass(frozen=True)
class Location:
    """Where a node stood in its YAML file (1-based line and column)."""

    file: Path
    line: int
    col: int


@dataclass(frozen=True)
class VoiceSettings:
    """A voice request: name (id or case-insensitive substring) or None for the default.

    `rate` is relative to the engine's normal rate; `volume` is 0..1.
    """

    name: str | None = None
    rate: float = 1.0
    volume: float = 1.0


@dataclass(frozen=True)
class SoundRef:
    """A built-in sound (path is None) or a file already checked to be inside the sandbox."""

    name: str
    path: Path | None = None

    @property
    def builtin(self) -> bool:
        return self.path is None


@dataclass(frozen=True)
class Say:
    """Text for the TTS engine (variables substituted; holds no inline pauses)."""

    text: str
    voice: VoiceSettings
    where: Location


@dataclass(frozen=True)
class Pause:
    """Silence; a flexible one is scaled to meet the session's target duration."""

    seconds: float
    flexible: bool
    where: Location


@dataclass(frozen=True)
class Sound:
    """A cue sound played whole; the next step starts when it ends."""

    sound: SoundRef
    where: Location


BreathCue = Literal["tone", "voice", "both", "none"]


@dataclass(frozen=True)
class Breathe:
    """Paced breathing: `cycles` rounds of (inhale, hold, exhale, hold-after) seconds."""

    inhale: float
    hold: float
    exhale: float
    hold_after: float
    cycles: int
    cue: BreathCue
    voice: VoiceSettings
    where: Location

    @property
    def cycle_seconds(self) -> float:
        return self.inhale + self.hold + self.exhale + self.hold_after


Step = Say | Pause | Sound | Breathe


@dataclass(frozen=True)
class Section:
    """A titled run of steps; becomes a chapter."""

    title: str
    steps: tuple[Step, ...]
    where: Location


@dataclass(frozen=True)
class Ambience:
    """A bed under the whole session at `gain` (linear, relative to the voice)."""

    sound: SoundRef
    gain: float
    where: Location


@dataclass(frozen=True)
class Script:
    """A loaded, validated, fully resolved script."""

    path: Path
    id: str
    title: str
    kind: str
    summary: str
    language: str
    duration: float | None  # target seconds, or None
    voice: VoiceSettings
    ambience: Ambience | None
    variables: Mapping[str, str]
    sections: tuple[Section, ...]
    where: Location = field(compare=False, default=None)  # type: ignore[assignment]
    # Where `duration:` stood, so a target that cannot be met points at it.
    duration_where: Location | None = field(compare=False, default=None)


# ---------------------------------------------------------------------------
# The loader
#
# Two passes. The first reads each file once (an included file once, however
# often it is used) into "raw" steps, validating everything that does not
# depend on where a step is used. The second unrolls repeats, inlines includes
# and substitutes variables, which depend on the scope a step lands in.
# Problems from both passes are collected, deduplicated and sorted into file
# order, so one run reports everything at once.

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a long session is a few tens of KiB
MAX_REPEAT = 1000  # rounds of one repeat
MAX_STEPS = 20_000  # steps once repeats and includes are unrolled
MAX_EXPANSION_WORK = 200_000  # repeat rounds visited: stops empty nested repeats
MAX_SAY_CHARS = 5000  # one say, after variables
MAX_INCLUDE_FILES = 32  # distinct files one script may pull in
MAX_INCLUDE_DEPTH = 8  # a includes b includes c ...
MAX_CYCLES = 1000  # breathing cycles of one block
MAX_PHASE_SECONDS = 60.0  # one breathing phase
RATE_RANGE = (0.3, 3.0)  # voice.rate, relative to the engine's normal rate
MIN_AMBIENCE_DB = -90.0
DEFAULT_AMBIENCE_DB = -30.0

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")
LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
VARIABLE_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STEP_KEYS = ("say", "pause", "sound", "breathe", "repeat", "include")
TOP_KEYS = (
    "prtvoice", "title", "id", "kind", "summary", "language", "duration",
    "voice", "ambience", "variables", "sections",
)  # fmt: skip


def _kind(node: YNode) -> str:
    """What a node is, for a message: empty, a list, a mapping, or its text."""
    if isinstance(node, YScalar):
        return "empty" if node.value is None else show(node.raw)
    return f"a {node.kind}"


# ----- the first pass: files to raw steps ------------------------------------


class _Abort(Exception):
    """Stops the second pass at a limit; its problem is already recorded."""


@dataclass
class _Var:
    name: str


@dataclass
class _Template:
    """Text with {variables}: literal strings and _Var parts."""

    parts: list[str | _Var]
    where: Location


@dataclass
class _RawSay:
    pieces: list[_Template | Pause]
    voice: dict
    where: Location


@dataclass
class _RawBreathe:
    phases: tuple[float, float, float, float]
    cycles: int
    cue: BreathCue
    voice: dict
    where: Location


@dataclass
class _RawRepeat:
    count: int
    steps: list
    where: Location


@dataclass
class _RawInclude:
    doc: _Doc | None
    where: Location


@dataclass
class _RawSection:
    title: str
    steps: list
    where: Location


@dataclass
class _Doc:
    """One file, read and checked: what a script or an include contributes."""

    file: Path  # as shown in messages
    real: Path  # resolved, for the sandbox and the include cache
    values: dict = field(default_factory=dict)  # top-level fields, checked
    variables: dict[str, str] = field(default_factory=dict)
    voice: dict = field(default_factory=dict)  # only the fields the file gives
    sections: list[_RawSection] = field(default_factory=list)


_INLINE_PAUSE = re.compile(r"\[([^\[\]]*)\]")
_BRACES = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def _did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _one_of(choices: Sequence[str]) -> str:
    return "one of: " + ", ".join(choices)


class _Reader:
    """Collects every problem while reading a script and the files it includes."""

    def __init__(self, top: Path, audio_dirs: Sequence[Path]):
        self.problems: list[Problem] = []
        self._seen: set[tuple] = set()
        self.file_order: dict[Path, int] = {}
        self.docs: dict[Path, _Doc | None] = {}
        self.chain: list[Path] = []
        self.top_real_dir = _resolve(top.parent)
        self.audio_real = [_resolve(Path(d)) for d in audio_dirs]
        self.step_count = 0
        self.work = 0
        self.idle_memo: dict[int, int | None] = {}  # see _idle_rounds
        self.top_where: Location | None = None

    # -- problems --

    def problem(self, file: Path, at, message: str, hint: str | None = None) -> None:
        line, col = (at.line, at.col) if at is not None else (1, 1)
        key = (file, line, col, message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.file_order.setdefault(file, len(self.file_order))
        self.problems.append(Problem(file, line, col, message, hint))

    def sorted_problems(self) -> list[Problem]:
        order = self.file_order
        return sorted(self.problems, key=lambda p: (order.get(p.file, 1 << 30), p.line, p.col))

    # -- files --

    def load(self, file: Path, real: Path, *, top: bool) -> _Doc | None:
        self.file_order.setdefault(file, len(self.file_order))
        self.chain.append(real)
        try:
            doc = self._load(file, real, top=top)
        finally:
            self.chain.pop()
        self.docs[real] = doc
        return doc

    def _read_text(self, file: Path) -> str | None:
        try:
            info = file.stat()
        except FileNotFoundError:
            self.problem(file, None, "no such file")
            return None
        except OSError as exc:
            self.problem(file, None, f"cannot read the file: {exc.strerror or exc}")
            return None
        if stat.S_ISDIR(info.st_mode):
            self.problem(file, None, "this is a folder, not a script file")
            return None
        if not stat.S_ISREG(info.st_mode):
            self.problem(file, None, "this is not a regular file")
            return None
        if info.st_size > MAX_FILE_BYTES:
            self.problem(
                file,
                None,
                f"the file is larger than {MAX_FILE_BYTES // 1024} KiB",
                "split it into parts with `include:`",
            )
            return None
        try:
            with open(file, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            self.problem(file, None, f"cannot read the file: {exc.strerror or exc}")
            return None
        if len(data) > MAX_FILE_BYTES:
            self.problem(file, None, f"the file is larger than {MAX_FILE_BYTES // 1024} KiB")
            return None
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            self.problem(
                file,
                Location(file, line, col),
                f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x})",
                "save it as UTF-8",
            )
            return None

    def _load(self, file: Path, real: Path, *, top: bool) -> _Doc | None:
        text = self._read_text(file)
        if text is None:
            return None
        try:
            root = read_yaml(text, file=file)
        except ScriptError as exc:
            for p in exc.problems:
                self.problem(p.file, p, p.message, p.hint)
            return None
        if root is None:
            self.problem(file, None, "the file is empty", "a script starts with `prtvoice: 1`")
            return None
        if not isinstance(root, YMap):
            self.problem(
                file,
                root,
                f"a script is a mapping of keys like `title:` and `sections:`, not a {root.kind}",
            )
            return None
        doc = _Doc(file=file, real=real)
        keys = self.keys(file, root, TOP_KEYS, "key")
        required = ("prtvoice", "title", "kind", "sections") if top else ("sections",)
        for name in required:
            if name not in keys:
                example = {
                    "prtvoice": "prtvoice: 1",
                    "title": "title: My practice",
                    "kind": "kind: mindfulness",
                    "sections": "sections: [...]",
                }[name]
                self.problem(file, root, f"missing `{name}:`", f"add `{example}`")
        if "prtvoice" in keys:
            self._version(file, keys["prtvoice"])
        for name in ("title", "summary"):
            if name in keys:
                doc.values[name] = self.text(file, keys[name], name)
        if "id" in keys:
            self._id(file, keys["id"], doc)
        if "kind" in keys:
            value = self.text(file, keys["kind"], "kind")
            if value is not None:
                kind = value.strip().lower()
                if kind in names.KINDS:
                    doc.values["kind"] = kind
                else:
                    self.problem(
                        file,
                        keys["kind"],
                        f"unknown kind {show(value)}",
                        _did_you_mean(kind, names.KINDS) or _one_of(names.KINDS),
                    )
        if "language" in keys:
            value = self.text(file, keys["language"], "language")
            if value is not None:
                if LANGUAGE_PATTERN.fullmatch(value.strip()):
                    doc.values["language"] = value.strip()
                else:
                    self.problem(
                        file,
                        keys["language"],
                        f"{show(value)} is not a language code",
                        "write a code like en, de or en-gb",
                    )
        if "duration" in keys:
            seconds = self.duration(
                file, keys["duration"], "target duration", maximum=names.MAX_SESSION_SECONDS
            )
            if seconds is not None:
                doc.values["duration"] = (seconds[0], keys["duration"])
        if "voice" in keys:
            doc.voice = self.voice(file, keys["voice"])
        if "ambience" in keys:
            doc.values["ambience"] = self.ambience(file, keys["ambience"], doc)
        if "variables" in keys:
            doc.variables = self.variables(file, keys["variables"])
        if "sections" in keys:
            doc.sections = self.sections(file, keys["sections"], doc)
        return doc

    # -- small readers --

    def keys(self, file: Path, node: YMap, allowed: Sequence[str], what: str) -> dict[str, YNode]:
        """The mapping's values by key; reports keys that are not text or not allowed."""
        found: dict[str, YNode] = {}
        for key, value in node.items:
            if not isinstance(key, YScalar):
                self.problem(file, key, f"a {what} must be a word, not a {key.kind}")
                continue
            name = key.raw
            if name not in allowed:
                lowered = name.strip().lower()
                hint = (
                    f"write it in lower case: {lowered!r}"
                    if lowered in allowed
                    else _did_you_mean(name, allowed) or _one_of(allowed)
                )
                self.problem(file, key, f"unknown {what} {show(name)}", hint)
                continue
            found[name] = value
        return found

    def text(self, file: Path, node: YNode, what: str, *, empty_ok: bool = False) -> str | None:
        """A scalar as text: numbers, dates and true/false as they were written."""
        if not isinstance(node, YScalar):
            self.problem(file, node, f"`{what}` must be text, not a {node.kind}")
            return None
        if node.value is None:
            if empty_ok:
                return ""
            self.problem(file, node, f"`{what}` is empty")
            return None
        value = node.value if isinstance(node.value, str) else node.raw
        if not value.strip() and not empty_ok:
            self.problem(file, node, f"`{what}` is empty")
            return None
        return value

    def number(self, file: Path, node: YNode, what: str, low: float, high: float) -> float | None:
        value = node.value if isinstance(node, YScalar) else None
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                value = None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            shown = node.kind if not isinstance(node, YScalar) else show(node.raw)
            self.problem(
                file, node, f"`{what}` must be a number from {low:g} to {high:g}, not {shown}"
            )
            return None
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not (math.isfinite(number) and low <= number <= high):
            self.problem(
                file, node, f"`{what}` must be from {low:g} to {high:g}, not {show(node.raw)}"
            )
            return None
        return number

    def whole(self, file: Path, node: YNode, what: str, low: int, high: int) -> int | None:
        value = node.value if isinstance(node, YScalar) else None
        if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 12:
            value = int(value.strip())
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            shown = node.kind if not isinstance(node, YScalar) else show(node.raw)
            self.problem(file, node, f"`{what}` must be a whole number, not {shown}")
            return None
        if not low <= value <= high:
            self.problem(file, node, f"`{what}` must be from {low} to {high}, not {show(node.raw)}")
            return None
        return value

    def duration(
        self,
        file: Path,
        node: YNode,
        what: str,
        *,
        maximum: float,
        flexible_ok: bool = False,
        zero_ok: bool = False,
    ) -> tuple[float, bool] | None:
        """(seconds, flexible) of a duration node, or None after reporting why not."""
        if not isinstance(node, YScalar) or node.value is None or isinstance(node.value, bool):
            shown = (
                "empty"
                if isinstance(node, YScalar) and node.value is None
                else (show(node.raw) if isinstance(node, YScalar) else f"a {node.kind}")
            )
            self.problem(file, node, f"the {what} must be a duration, not {shown}", DURATION_HINT)
            return None
        value = node.value
        flexible = False
        if isinstance(value, str):
            value = value.strip()
            if value.endswith("~"):
                if not flexible_ok:
                    self.problem(
                        file,
                        node,
                        f"a {what} cannot be flexible (`~`)",
                        "only pauses stretch to meet a target duration",
                    )
                    return None
                flexible, value = True, value[:-1]
        elif not isinstance(value, (int, float)):  # a date
            value = node.raw
        try:
            seconds = seconds_of(value)
        except DurationProblem as exc:
            self.problem(file, node, f"{what}: {exc.message}", exc.hint)
            return None
        if seconds == 0 and not zero_ok:
            self.problem(file, node, f"a {what} must be longer than zero")
            return None
        if seconds > maximum:
            self.problem(
                file,
                node,
                f"a {what} of {length_text(seconds)} is over the limit of {length_text(maximum)}",
            )
            return None
        return seconds, flexible

    def _version(self, file: Path, node: YNode) -> None:
        value = node.value if isinstance(node, YScalar) else None
        if isinstance(value, int) and not isinstance(value, bool):
            if value != names.FORMAT_VERSION:
                self.problem(
                    file,
                    node,
                    f"format version {show(node.value)} is not supported",
                    f"this prtvoice reads `prtvoice: {names.FORMAT_VERSION}`",
                )
            return
        self.problem(
            file,
            node,
            "`prtvoice` is the format version: the number 1",
            f"write `prtvoice: {names.FORMAT_VERSION}`",
        )

    def _id(self, file: Path, node: YNode, doc: _Doc) -> None:
        value = self.text(file, node, "id")
        if value is None:
            return
        if ID_PATTERN.fullmatch(value):
            doc.values["id"] = value
        else:
            self.problem(
                file,
                node,
                f"the id {show(value)} may hold only lower-case letters, "
                "digits and dashes, starting with a letter or digit",
                f"like {_slug(value)!r}",
            )

    def voice(self, file: Path, node: YNode) -> dict:
        """The voice fields a node gives (name, rate, volume): merged field by field later."""
        given: dict = {}
        if isinstance(node, YScalar) and isinstance(node.value, str):
            name = node.value.strip()
            if name:
                given["name"] = name
            else:
                self.problem(file, node, "the voice name is empty")
            return given
        if not isinstance(node, YMap):
            self.problem(
                file,
                node,
                f"`voice` must be a mapping (name, rate, volume), not {_kind(node)}",
            )
            return given
        keys = self.keys(file, node, ("name", "rate", "volume"), "voice key")
        if "name" in keys:
            name = self.text(file, keys["name"], "voice.name")
            if name is not None:
                given["name"] = name.strip()
        if "rate" in keys:
            rate = self.number(file, keys["rate"], "voice.rate", *RATE_RANGE)
            if rate is not None:
                given["rate"] = rate
        if "volume" in keys:
            volume = self.number(file, keys["volume"], "voice.volume", 0.0, 1.0)
            if volume is not None:
                given["volume"] = volume
        return given

    def variables(self, file: Path, node: YNode) -> dict[str, str]:
        found: dict[str, str] = {}
        if not isinstance(node, YMap):
            self.problem(file, node, "`variables` must be a mapping of names to text")
            return found
        for key, value in node.items:
            if not isinstance(key, YScalar) or not VARIABLE_PATTERN.fullmatch(key.raw):
                shown = show(key.raw) if isinstance(key, YScalar) else f"a {key.kind}"
                self.problem(
                    file,
                    key,
                    f"{shown} is not a variable name",
                    "use letters, digits and _, starting with a letter",
                )
                continue
            if isinstance(value, YScalar) and value.value is not None:
                found[key.raw] = value.value if isinstance(value.value, str) else value.raw
            elif isinstance(value, YScalar):
                self.problem(
                    file,
                    value,
                    f"the variable {key.raw!r} has no value",
                    f'write `{key.raw}: ""` for an empty text',
                )
                found[key.raw] = ""  # known, so its uses are not reported again
            else:
                self.problem(
                    file, value, f"the variable {key.raw!r} must be text, not a {value.kind}"
                )
                found[key.raw] = ""
        return found

    # -- sounds and files --

    def sound(self, file: Path, node: YNode, doc: _Doc, *, bed: bool) -> SoundRef | None:
        """A built-in sound or a file inside the sandbox."""
        what = "ambience sound" if bed else "sound"
        name = self.text(file, node, what)
        if name is None:
            return None
        name = name.strip()
        if "/" in name or "\\" in name or PurePosixPath(name).suffix:
            bases = [doc.real.parent, self.top_real_dir, *self.audio_real]
            path = self.resolve_file(
                file,
                node,
                name,
                bases=bases,
                roots=[self.top_real_dir, *self.audio_real],
                what="sound file",
            )
            return SoundRef(name, path) if path is not None else None
        builtin = name.lower()
        allowed, other = (
            (names.AMBIENCE_BEDS, names.CUE_SOUNDS)
            if bed
            else (names.CUE_SOUNDS, names.AMBIENCE_BEDS)
        )
        if builtin in allowed:
            return SoundRef(builtin)
        if builtin in other:
            hint = (
                f"{builtin!r} is a short cue sound; beds are " + ", ".join(allowed)
                if bed
                else f"{builtin!r} plays under the whole session: use `ambience: {builtin}`"
            )
            self.problem(
                file, node, f"{builtin!r} is not a{'n ambience bed' if bed else ' cue sound'}", hint
            )
            return None
        self.problem(
            file,
            node,
            f"unknown {what} {show(name)}",
            _did_you_mean(builtin, allowed)
            or f"built-in: {', '.join(allowed)}; or a file name with its extension",
        )
        return None

    def resolve_file(
        self,
        file: Path,
        node: YNode,
        written: str,
        *,
        bases: Sequence[Path],
        roots: Sequence[Path],
        what: str,
    ) -> Path | None:
        """The real path of a file a script names, or None after reporting why not.

        Untrusted input: no absolute paths, nothing outside `roots` (lexically
        or through a symlink), regular files only. Looked for in `bases` order.
        """
        if "\x00" in written or not written:
            self.problem(file, node, f"{show(written)} is not a file name")
            return None
        posix = written.replace("\\", "/")
        if (
            posix.startswith(("/", "~"))
            or PureWindowsPath(written).drive
            or PureWindowsPath(written).is_absolute()
        ):
            self.problem(
                file,
                node,
                f"the {what} {show(written)} is an absolute path",
                "name it relative to the script's folder",
            )
            return None
        relative = PurePosixPath(posix)
        for base in dict.fromkeys(bases):
            candidate = Path(os.path.normpath(base / relative))
            if not any(_inside(candidate, root) for root in roots):
                self.problem(
                    file,
                    node,
                    f"the {what} {show(written)} is outside the folders a script may use",
                    "keep it in the script's folder",
                )
                return None
            if not os.path.lexists(candidate):
                continue
            real = _resolve(candidate)
            if not any(_inside(real, root) for root in roots):
                self.problem(
                    file,
                    node,
                    f"the {what} {show(written)} links to a file "
                    "outside the folders a script may use",
                )
                return None
            try:
                mode = os.stat(real).st_mode
            except OSError as exc:
                self.problem(
                    file, node, f"cannot read the {what} {show(written)}: {exc.strerror or exc}"
                )
                return None
            if not stat.S_ISREG(mode):
                kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
                self.problem(file, node, f"the {what} {show(written)} is {kind}")
                return None
            return real
        where = (
            "next to the script"
            if what != "sound file"
            else "next to the script or in the sound library"
        )
        self.problem(file, node, f"the {what} {show(written)} was not found {where}")
        return None

    def ambience(self, file: Path, node: YNode, doc: _Doc) -> Ambience | None:
        where = Location(file, node.line, node.col)
        if isinstance(node, YScalar):
            ref = self.sound(file, node, doc, bed=True)
            gain = 10 ** (DEFAULT_AMBIENCE_DB / 20)
        elif isinstance(node, YMap):
            keys = self.keys(file, node, ("sound", "level"), "ambience key")
            if "sound" not in keys:
                self.problem(file, node, "`ambience` needs a `sound:`", "like sound: brown-noise")
                ref = None
            else:
                ref = self.sound(file, keys["sound"], doc, bed=True)
            gain = 10 ** (DEFAULT_AMBIENCE_DB / 20)
            if "level" in keys:
                gain = self.level(file, keys["level"])
        else:
            self.problem(
                file, node, f"`ambience` must be a mapping (sound, level), not a {node.kind}"
            )
            return None
        if ref is None or gain is None:
            return None
        return Ambience(ref, gain, where)

    def level(self, file: Path, node: YNode) -> float | None:
        """A bed level: `-30dB` or a 0..1 factor (`50%` too), as a linear gain."""
        value = node.value if isinstance(node, YScalar) else None
        hint = "write decibels like -30dB, or a factor from 0 to 1"
        if isinstance(value, str):
            text = value.strip().lower().replace(" ", "")
            try:
                if text.endswith("db"):
                    decibels = float(text[:-2])
                    if not MIN_AMBIENCE_DB <= decibels <= 0:
                        self.problem(
                            file,
                            node,
                            f"the ambience level must be from "
                            f"{MIN_AMBIENCE_DB:g}dB to 0dB, not {show(value)}",
                            "0dB is as loud as the voice",
                        )
                        return None
                    return 10 ** (decibels / 20)
                value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
            except ValueError:
                self.problem(file, node, f"{show(value)} is not a level", hint)
                return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(
                file,
                node,
                f"the ambience level must be a level, not "
                f"{node.kind if not isinstance(node, YScalar) else show(node.raw)}",
                hint,
            )
            return None
        try:
            factor = float(value)
        except OverflowError:
            factor = math.inf
        if not (math.isfinite(factor) and 0 <= factor <= 1):
            self.problem(
                file,
                node,
                f"the ambience level factor must be from 0 to 1, not {show(node.raw)}",
                hint,
            )
            return None
        return factor

    # -- sections and steps --

    def sections(self, file: Path, node: YNode, doc: _Doc) -> list[_RawSection]:
        found: list[_RawSection] = []
        if not isinstance(node, YSeq) or not node.items:
            empty = isinstance(node, YSeq) or (isinstance(node, YScalar) and node.value is None)
            self.problem(
                file,
                node,
                "`sections` must be a list with at least one section"
                + ("" if empty else f", not a {node.kind}"),
                "each section is `- title: ...` with `steps:`",
            )
            return found
        for item in node.items:
            if not isinstance(item, YMap):
                self.problem(
                    file,
                    item,
                    f"a section is a mapping with `title:` and `steps:`, not a {item.kind}",
                )
                continue
            keys = self.keys(file, item, ("title", "steps"), "section key")
            title = self.text(file, keys["title"], "title") if "title" in keys else None
            if "title" not in keys:
                self.problem(file, item, "this section has no `title:`")
            if "steps" not in keys:
                self.problem(file, item, "this section has no `steps:`")
                continue
            steps = self.steps(file, keys["steps"], doc)
            found.append(_RawSection(title or "", steps, Location(file, item.line, item.col)))
        return found

    def steps(self, file: Path, node: YNode, doc: _Doc) -> list:
        if not isinstance(node, YSeq):
            shown = (
                "empty" if isinstance(node, YScalar) and node.value is None else f"a {node.kind}"
            )
            self.problem(
                file,
                node,
                f"`steps` must be a list of steps, not {shown}",
                "start each step with `- `, like `- say: Hello`",
            )
            return []
        found = []
        for item in node.items:
            step = self.step(file, item, doc)
            if step is not None:
                found.append(step)
        return found

    def step(self, file: Path, node: YNode, doc: _Doc):
        where = Location(file, node.line, node.col)
        if not isinstance(node, YMap):
            self.problem(
                file,
                node,
                f"a step is a mapping like `say: ...` or `pause: 5s`, not {_kind(node)}",
            )
            return None
        keys = self.keys(file, node, (*STEP_KEYS, "steps"), "step")
        actions = [name for name in STEP_KEYS if name in keys]
        if len(actions) > 1:
            second = next(
                k for k, _ in node.items if isinstance(k, YScalar) and k.raw == actions[1]
            )
            self.problem(
                file,
                second,
                f"a step does one thing; this one has both `{actions[0]}` and `{actions[1]}`",
                "start each step on its own line with `- `",
            )
            return None
        if "steps" in keys and actions != ["repeat"]:
            self.problem(
                file,
                node,
                "`steps:` inside a step belongs to `repeat: N`",
                "write `repeat: 3` beside `steps:`",
            )
            return None
        if not actions:
            if node.items and all(isinstance(k, YScalar) and k.raw in keys for k, _ in node.items):
                self.problem(file, node, "this step does nothing")
            elif not node.items:
                self.problem(file, node, "this step is empty")
            return None
        action = actions[0]
        value = keys[action]
        if action == "say":
            return self.say(file, value, where)
        if action == "pause":
            found = self.duration(
                file, value, "pause", maximum=names.MAX_PAUSE_SECONDS, flexible_ok=True
            )
            return Pause(found[0], found[1], where) if found else None
        if action == "sound":
            ref = self.sound(file, value, doc, bed=False)
            return Sound(ref, where) if ref else None
        if action == "breathe":
            return self.breathe(file, value, where)
        if action == "repeat":
            return self.repeat(file, value, keys.get("steps"), where, doc)
        return self.include(file, value, where, doc)

    def say(self, file: Path, node: YNode, where: Location) -> _RawSay | None:
        voice: dict = {}
        text_node = node
        if isinstance(node, YMap):
            keys = self.keys(file, node, ("text", "voice"), "say key")
            if "voice" in keys:
                voice = self.voice(file, keys["voice"])
            if "text" not in keys:
                self.problem(file, node, "`say` needs a `text:`")
                return None
            text_node = keys["text"]
        text = self.text(file, text_node, "say")
        if text is None:
            return None
        if len(text) > MAX_SAY_CHARS:
            self.problem(
                file,
                text_node,
                f"this text is {len(text)} characters long, over the limit of {MAX_SAY_CHARS}",
                "split it into several `say` steps",
            )
            return None
        pieces = self.inline_pauses(file, text_node, text, where)
        if pieces is None:
            return None
        return _RawSay(pieces, voice, where)

    def inline_pauses(self, file: Path, node: YNode, text: str, where: Location):
        """Text split at inline pauses `[2s]`, `[750ms]`, `[2s~]`; None after a problem.

        Only brackets that start with a number are pauses; `[laughs]` stays text.
        """
        pieces: list[_Template | Pause] = []
        good = True
        position = 0
        for match in _INLINE_PAUSE.finditer(text):
            inner = match.group(1).strip()
            if not inner or not (inner[0].isdigit() or inner[0] in ".-+"):
                continue
            template = self.template(file, node, text[position : match.start()], where)
            pause = self._inline(file, node, inner, where)
            good = good and template is not None and pause is not None
            if template is not None and template.parts:
                pieces.append(template)
            if pause is not None:
                pieces.append(pause)
            position = match.end()
        template = self.template(file, node, text[position:], where)
        if template is None or not good:
            return None
        if template.parts:
            pieces.append(template)
        return pieces

    def _inline(self, file: Path, node: YNode, inner: str, where: Location) -> Pause | None:
        flexible = inner.endswith("~")
        try:
            seconds = seconds_of(inner[:-1] if flexible else inner)
        except DurationProblem as exc:
            self.problem(file, node, f"inline pause [{inner[:40]}]: {exc.message}", exc.hint)
            return None
        if seconds == 0:
            self.problem(file, node, f"the inline pause [{inner}] must be longer than zero")
            return None
        if seconds > names.MAX_PAUSE_SECONDS:
            self.problem(
                file,
                node,
                f"the inline pause [{inner[:40]}] is over the limit of "
                f"{length_text(names.MAX_PAUSE_SECONDS)}",
            )
            return None
        return Pause(seconds, flexible, where)

    def template(self, file: Path, node: YNode, text: str, where: Location) -> _Template | None:
        """Text with `{name}` placeholders; `{{` and `}}` are literal braces."""
        parts: list[str | _Var] = []
        position = 0
        good = True
        for match in _BRACES.finditer(text):
            parts.append(text[position : match.start()])
            position = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                parts.append(token[0])
            elif token in ("{", "}"):
                self.problem(
                    file,
                    node,
                    f"a lone {token!r} in the text",
                    f"write {token * 2} for a literal brace, or {{name}} for a variable",
                )
                good = False
            else:
                name = match.group(1).strip()
                if VARIABLE_PATTERN.fullmatch(name):
                    parts.append(_Var(name))
                else:
                    self.problem(
                        file,
                        node,
                        f"{show(token)} is not a variable",
                        "variable names use letters, digits and _; write {{ and }} "
                        "for literal braces",
                    )
                    good = False
        parts.append(text[position:])
        parts = [part for part in parts if not isinstance(part, str) or part]
        if all(isinstance(part, str) and not part.strip() for part in parts):
            parts = []
        return _Template(parts, where) if good else None

    def breathe(self, file: Path, node: YNode, where: Location) -> _RawBreathe | None:
        if not isinstance(node, YMap):
            self.problem(
                file,
                node,
                "`breathe` needs a mapping: pattern, cycles or for, cue",
                "like `breathe: {pattern: 4-2-6, cycles: 6}`",
            )
            return None
        keys = self.keys(file, node, ("pattern", "cycles", "for", "cue", "voice"), "breathe key")
        phases = None
        if "pattern" in keys:
            phases = self.pattern(file, keys["pattern"])
        else:
            self.problem(
                file,
                node,
                "`breathe` needs a `pattern:`",
                "like 4-2-6, or one of: " + ", ".join(names.BREATH_PATTERNS),
            )
        cycles = None
        if "cycles" in keys and "for" in keys:
            self.problem(file, keys["for"], "give `cycles:` or `for:`, not both")
        elif "cycles" in keys:
            cycles = self.whole(file, keys["cycles"], "cycles", 1, MAX_CYCLES)
        elif "for" in keys:
            found = self.duration(
                file, keys["for"], "breathing time", maximum=names.MAX_SESSION_SECONDS
            )
            if found is not None and phases is not None:
                cycle = sum(phases)
                # Whole cycles only, rounded half up, and at least one.
                cycles = max(1, math.floor(found[0] / cycle + 0.5))
                if cycles > MAX_CYCLES:
                    self.problem(
                        file,
                        keys["for"],
                        f"{length_text(found[0])} is {cycles} breathing "
                        f"cycles, over the limit of {MAX_CYCLES}",
                    )
                    cycles = None
        else:
            self.problem(file, node, "say how long to breathe: `cycles: 6` or `for: 2m`")
        cue: str | None = "tone"
        if "cue" in keys:
            cue_node = keys["cue"]
            value = cue_node.value if isinstance(cue_node, YScalar) else None
            if value is False:  # `cue: off` / `cue: no` reads as false in YAML
                cue = "none"
            elif isinstance(value, str) and value.strip().lower() in names.BREATH_CUES:
                cue = value.strip().lower()
            else:
                shown = (
                    show(cue_node.raw) if isinstance(cue_node, YScalar) else f"a {cue_node.kind}"
                )
                self.problem(
                    file,
                    cue_node,
                    f"unknown breathing cue {shown}",
                    _did_you_mean(str(value).lower(), names.BREATH_CUES)
                    or _one_of(names.BREATH_CUES),
                )
                cue = None
        voice = self.voice(file, keys["voice"]) if "voice" in keys else {}
        if phases is None or cycles is None or cue is None:
            return None
        return _RawBreathe(phases, cycles, cue, voice, where)  # type: ignore[arg-type]

    def pattern(self, file: Path, node: YNode) -> tuple[float, float, float, float] | None:
        """(inhale, hold, exhale, hold-after) from a name, `4-2-6[-2]`, `5.5-5.5` or a list."""
        numbers: list = []
        if isinstance(node, YScalar) and isinstance(node.value, str):
            text = node.value.strip().lower()
            if text in names.BREATH_PATTERNS:
                return names.BREATH_PATTERNS[text]
            parts = [part.strip().removesuffix("s").strip() for part in text.split("-")]
            if not all(re.fullmatch(NUMBER_PATTERN, part) for part in parts):
                self.problem(
                    file,
                    node,
                    f"unknown breathing pattern {show(node.value)}",
                    _did_you_mean(text, list(names.BREATH_PATTERNS))
                    or "write seconds like 4-2-6 (in-hold-out) or 4-2-6-2, or one of: "
                    + ", ".join(names.BREATH_PATTERNS),
                )
                return None
            numbers = [float(part) for part in parts]
        elif isinstance(node, YSeq):
            for item in node.items:
                value = item.value if isinstance(item, YScalar) else None
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    self.problem(file, item, "a breathing pattern lists seconds as numbers")
                    return None
                try:
                    numbers.append(float(value))
                except OverflowError:
                    numbers.append(math.inf)
        else:
            shown = show(node.raw) if isinstance(node, YScalar) else f"a {node.kind}"
            self.problem(
                file,
                node,
                f"{shown} is not a breathing pattern",
                "write seconds like 4-2-6 (in-hold-out), or one of: "
                + ", ".join(names.BREATH_PATTERNS),
            )
            return None
        if len(numbers) == 2:
            numbers = [numbers[0], 0.0, numbers[1], 0.0]
        elif len(numbers) == 3:
            numbers.append(0.0)
        if len(numbers) != 4:
            self.problem(
                file,
                node,
                "a breathing pattern has 2 to 4 parts: in-out, in-hold-out or in-hold-out-hold",
            )
            return None
        if numbers[0] <= 0 or numbers[2] <= 0:
            self.problem(
                file, node, "a breathing pattern needs an inhale and an exhale longer than zero"
            )
            return None
        if not all(math.isfinite(n) and 0 <= n <= MAX_PHASE_SECONDS for n in numbers):
            self.problem(
                file, node, f"each breathing phase must be from 0 to {MAX_PHASE_SECONDS:g} seconds"
            )
            return None
        return (numbers[0], numbers[1], numbers[2], numbers[3])

    def repeat(self, file: Path, node: YNode, steps: YNode | None, where: Location, doc: _Doc):
        count = self.whole(file, node, "repeat", 1, MAX_REPEAT)
        if steps is None:
            self.problem(
                file,
                node,
                "`repeat` needs `steps:` beside it",
                "like `repeat: 3` and `steps: [...]` in the same step",
            )
            return None
        inner = self.steps(file, steps, doc)
        if isinstance(steps, YSeq) and not steps.items:
            self.problem(file, steps, "this repeat has no steps")
            return None
        if count is None:
            return None
        return _RawRepeat(count, inner, where)

    def include(self, file: Path, node: YNode, where: Location, doc: _Doc) -> _RawInclude | None:
        written = self.text(file, node, "include")
        if written is None:
            return None
        written = written.strip()
        real = self.resolve_file(
            file,
            node,
            written,
            bases=[doc.real.parent],
            roots=[self.top_real_dir],
            what="included file",
        )
        if real is None:
            return None
        if real in self.chain:
            loop = [*self.chain[self.chain.index(real) :], real]
            shown = " -> ".join(self._short(path) for path in loop)
            self.problem(
                file,
                node,
                f"include cycle: {shown}",
                "a file cannot include itself, directly or through others",
            )
            return None
        if real in self.docs:
            return _RawInclude(self.docs[real], where)
        if len(self.chain) > MAX_INCLUDE_DEPTH:
            self.problem(file, node, f"includes are nested more than {MAX_INCLUDE_DEPTH} deep")
            return None
        if len(self.docs) >= MAX_INCLUDE_FILES:
            self.problem(file, node, f"a script may include at most {MAX_INCLUDE_FILES} files")
            return None
        shown = Path(os.path.normpath(file.parent / PurePosixPath(written.replace("\\", "/"))))
        return _RawInclude(self.load(shown, real, top=False), where)

    def _short(self, real: Path) -> str:
        try:
            return real.relative_to(self.top_real_dir).as_posix()
        except ValueError:
            return real.name

    # ----- the second pass: unroll, inline, substitute ------------------------

    def expand(self, steps: list, scope: Mapping[str, str], voice: dict, out: list) -> None:
        for raw in steps:
            if isinstance(raw, (Pause, Sound)):
                self.emit(out, raw)
            elif isinstance(raw, _RawSay):
                settings = VoiceSettings(**{**voice, **raw.voice})
                for piece in raw.pieces:
                    if isinstance(piece, Pause):
                        self.emit(out, piece)
                        continue
                    text = " ".join(self.fill(piece, scope).split())
                    if len(text) > MAX_SAY_CHARS:
                        self.problem(
                            piece.where.file,
                            piece.where,
                            f"with its variables this "
                            f"text is {len(text)} characters long, over the limit of "
                            f"{MAX_SAY_CHARS}",
                        )
                    elif text:
                        self.emit(out, Say(text, settings, piece.where))
            elif isinstance(raw, _RawBreathe):
                inhale, hold, exhale, hold_after = raw.phases
                self.emit(
                    out,
                    Breathe(
                        inhale,
                        hold,
                        exhale,
                        hold_after,
                        raw.cycles,
                        raw.cue,
                        VoiceSettings(**{**voice, **raw.voice}),
                        raw.where,
                    ),
                )
            elif isinstance(raw, _RawRepeat):
                idle = _idle_rounds([raw], self.idle_memo)
                if idle is not None:
                    # A body that never emits a step: count its rounds without running
                    # them (running 200000 empty rounds took over a second).
                    self.work += idle
                    if self.work > MAX_EXPANSION_WORK:
                        self.too_many(
                            raw.where,
                            f"the repeats in this script run more than {MAX_EXPANSION_WORK} "
                            "rounds in all",
                        )
                    continue
                for round_number in range(1, raw.count + 1):
                    self.work += 1
                    if self.work > MAX_EXPANSION_WORK:
                        self.too_many(
                            raw.where,
                            f"the repeats in this script run more than {MAX_EXPANSION_WORK} "
                            "rounds in all",
                        )
                    inner = {**scope, "n": str(round_number), "count": str(raw.count)}
                    self.expand(raw.steps, inner, voice, out)
            elif isinstance(raw, _RawInclude) and raw.doc is not None:
                # Counted like a round: files that include a file many times each would
                # otherwise multiply into millions of visits that emit nothing.
                idle = _idle_rounds([raw], self.idle_memo)
                self.work += 1 if idle is None else idle
                if self.work > MAX_EXPANSION_WORK:
                    self.too_many(
                        raw.where,
                        f"the includes in this script expand more than {MAX_EXPANSION_WORK} "
                        "times in all",
                    )
                # The included file's variables and voice are defaults under the includer's.
                if idle is not None:
                    continue  # it emits nothing: counting it was all there was to do
                sub_scope = {**raw.doc.variables, **scope}
                sub_voice = {**raw.doc.voice, **voice}
                for section in raw.doc.sections:
                    self.expand(section.steps, sub_scope, sub_voice, out)

    def emit(self, out: list, step: Step) -> None:
        self.step_count += 1
        if self.step_count > MAX_STEPS:
            self.too_many(step.where)
        out.append(step)

    def too_many(self, where: Location, message: str | None = None) -> None:
        place = self.top_where or where
        message = message or (
            f"the script has more than {MAX_STEPS} steps once repeats and includes are unrolled"
        )
        self.problem(place.file, place, message, "lower the repeat counts")
        raise _Abort

    def fill(self, template: _Template, scope: Mapping[str, str]) -> str:
        out = []
        for part in template.parts:
            if isinstance(part, str):
                out.append(part)
            elif part.name in scope:
                out.append(scope[part.name])
            else:
                where = template.where
                hint = _did_you_mean(part.name, list(scope))
                self.problem(
                    where.file,
                    where,
                    f"undefined variable {{{part.name}}}",
                    hint or f"define it under `variables:` or pass --set {part.name}=...",
                )
                out.append("{" + part.name + "}")
        return "".join(out)


def _idle_rounds(steps: list, memo: dict[int, int | None]) -> int | None:
    """Rounds (repeat rounds and includes) `steps` would run while emitting no step;
    None if they may emit one. `memo` (by id of a repeat or an included file, alive
    for the whole load) keeps a file included from many places from being walked
    again each time."""
    rounds = 0
    for raw in steps:
        if isinstance(raw, _RawRepeat):
            if id(raw) not in memo:
                inner = _idle_rounds(raw.steps, memo)
                memo[id(raw)] = None if inner is None else raw.count * (1 + inner)
            step_rounds = memo[id(raw)]
        elif isinstance(raw, _RawInclude):
            if raw.doc is None:
                continue
            if id(raw.doc) not in memo:
                total: int | None = 1  # expand() counts an include like a round
                for section in raw.doc.sections:
                    inner = _idle_rounds(section.steps, memo)
                    if inner is None:
                        total = None
                        break
                    total += inner
                memo[id(raw.doc)] = total
            step_rounds = memo[id(raw.doc)]
        else:  # a say, pause, sound or breathe may emit a step
            return None
        if step_rounds is None:
            return None
        # Past the budget the exact number no longer matters: keep the numbers small.
        rounds = min(rounds + step_rounds, MAX_EXPANSION_WORK + 1)
    return rounds


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return Path(os.path.abspath(path))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "script"


def load_script(
    path: Path,
    *,
    overrides: Mapping[str, str] = {},
    audio_dirs: Sequence[Path] = (),
) -> Script:
    """Read, check and resolve one script file (shared/script-format.md).

    `overrides` are `--set KEY=VALUE` values: they win over the script's
    variables (and define new ones). `audio_dirs` are the sound library
    folders searched after the script's own folder.

    Raises ScriptError holding every problem found, in file order (problems in
    an included file name that file); never any other exception for any input.
    """
    path = Path(path)
    reader = _Reader(path, audio_dirs)
    doc = reader.load(path, _resolve(path), top=True)
    sections: list[Section] = []
    if doc is not None:
        scope = {**doc.variables, **overrides}
        try:
            for raw_section in doc.sections:
                steps: list[Step] = []
                for raw in raw_section.steps:
                    reader.top_where = raw.where
                    reader.expand([raw], scope, doc.voice, steps)
                sections.append(Section(raw_section.title, tuple(steps), raw_section.where))
        except _Abort:
            pass
    if reader.problems or doc is None:
        raise ScriptError(reader.sorted_problems())
    values = doc.values
    duration = values.get("duration")
    return Script(
        path=path,
        id=values.get("id") or _slug(path.stem),
        title=values["title"],
        kind=values["kind"],
        summary=values.get("summary") or "",
        language=values.get("language") or names.DEFAULT_LANGUAGE,
        duration=duration[0] if duration else None,
        voice=VoiceSettings(**doc.voice),
        ambience=values.get("ambience"),
        variables=scope,
        sections=tuple(sections),
        where=Location(path, 1, 1),
        duration_where=Location(path, duration[1].line, duration[1].col) if duration else None,
    )
