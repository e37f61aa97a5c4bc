"""Opening a session: finding a script, loading it with the user's values, and
building the voice and sound banks the planner and renderer need.

This is the library's front door (the CLI is one client of it; tests and a
future GUI are others). Nothing here prints.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from prtvoice import paths
from prtvoice.errors import InputError, ScriptError
from prtvoice.options import Options

if TYPE_CHECKING:  # heavy modules stay out of `--help` and `check`
    from prtvoice.config import Config
    from prtvoice.gain_memory import GainMemory
    from prtvoice.plan import Plan
    from prtvoice.script import Script
    from prtvoice.sounds import SoundBank
    from prtvoice.tts import Engine, VoiceBank

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
SCRIPT_SUFFIXES = (".yaml", ".yml")


def script_dirs() -> list[Path]:
    """Folders whose scripts `list` shows and whose ids SCRIPT may name: bundled, then the user's."""
    return [paths.bundled_scripts_dir(), paths.user_scripts_dir()]


def audio_dirs() -> list[Path]:
    """The sound library searched after a script's own folder: bundled `audio/`, then the user's."""
    return [paths.bundled_audio_dir(), paths.user_audio_dir()]


def script_files(folder: Path) -> list[Path]:
    """The scripts directly in `folder` (parts/ holds pieces for `include`, not sessions)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SCRIPT_SUFFIXES and p.is_file())


def resolve_script(spec: str) -> Path:
    """SCRIPT as the user typed it: a path to a file, or the id of a bundled or user script."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise InputError(f"{spec} is a folder, not a script file")
    known: dict[str, Path] = {}
    for folder in script_dirs():
        for file in script_files(folder):
            known.setdefault(file.stem, file)
    if spec in known:
        return known[spec]
    close = difflib.get_close_matches(spec, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `prtvoice list` shows the scripts"
    raise InputError(f"no script file or bundled script named {spec!r}{hint}")


def parse_sets(pairs: Sequence[str]) -> dict[str, str]:
    """`--set KEY=VALUE` pairs as a mapping; the last one for a key wins."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise InputError(
                f"--set wants KEY=VALUE (for example --set area='lower back'), got {pair!r}"
            )
        values[key] = value
    return values


def load(
    spec: str | Path, *, sets: Mapping[str, str] | None = None, vars_file: Path | None = None
) -> Script:
    """Load a script with the user's values: script defaults < --vars file < --set."""
    from prtvoice.script import load_script

    path = resolve_script(str(spec))
    overrides: dict[str, str] = {}
    if vars_file is not None:
        from prtvoice.variables import load_variables

        overrides.update(load_variables(vars_file))
    overrides.update(sets or {})
    return load_script(path, overrides=overrides, audio_dirs=audio_dirs())


def options_from(config: Config, **changes) -> Options:
    """Options from the user's config file, with the command line's changes on top."""
    options = Options(
        engine=config.engine,
        voice=config.voice,
        rate=config.rate,
        loudness_lufs=config.loudness,
        artist=config.artist,
        album=config.album,
    )
    changes = {k: v for k, v in changes.items() if v is not None}
    return replace(options, **changes)


def voice_bank(
    config: Config, options: Options, *, jobs: int = 2, engine: Engine | None = None
) -> VoiceBank:
    """The voice bank of the configured engine (or of `engine`, made from the same
    config earlier, e.g. to start its worker sooner), caching under the platform cache folder."""
    from prtvoice.tts import VoiceBank, make_engine

    return VoiceBank(
        engine=engine if engine is not None else make_engine(config),
        cache_dir=paths.cache_dir(),
        sample_rate=options.sample_rate,
        jobs=jobs,
    )


def gain_memory() -> GainMemory:
    """Where exports remember each script's gain (under the cache folder)."""
    from prtvoice.gain_memory import GainMemory

    return GainMemory(paths.cache_dir() / "gains")


def sound_bank(options: Options) -> SoundBank:
    from prtvoice.sounds import SoundBank

    return SoundBank(sample_rate=options.sample_rate, seed=options.seed)


def find_section(script: Script, spec: str) -> int:
    """A section by 1-based number or case-insensitive title substring -> 0-based index."""
    titles = [s.title for s in script.sections]
    if spec.strip().isdigit():
        number = int(spec)
        if 1 <= number <= len(titles):
            return number - 1
        raise InputError(f"{script.path} has sections 1 to {len(titles)}, not {number}")
    wanted = spec.strip().casefold()
    matches = [i for i, t in enumerate(titles) if wanted in t.casefold()]
    if len(matches) == 1:
        return matches[0]
    exact = [i for i in matches if titles[i].casefold() == wanted]
    if exact:
        return exact[0]
    listing = ", ".join(f"{i + 1}. {t}" for i, t in enumerate(titles))
    if matches:
        raise InputError(f"{spec!r} matches several sections of {script.path}: {listing}")
    raise InputError(f"{script.path} has no section {spec!r}; its sections: {listing}")


def check_minutes(minutes: float | None) -> None:
    """--minutes, checked before any work: more than 0, at most the 4-hour session limit."""
    from prtvoice.names import MAX_SESSION_SECONDS

    limit = MAX_SESSION_SECONDS / 60
    if minutes is not None and not (0 < minutes <= limit):
        raise InputError(f"--minutes must be more than 0 and at most {limit:g}, got {minutes:g}")


def make_plan(
    script: Script,
    *,
    voices: VoiceBank,
    sounds: SoundBank,
    options: Options,
    minutes: float | None = None,
    from_section: int = 0,
    only_section: int | None = None,
) -> Plan:
    """The exact plan, synthesizing every clip first (in parallel on the bank's workers)."""
    from prtvoice.plan import plan_script

    check_minutes(minutes)
    return plan_script(
        script,
        options=options,
        speech=voices,
        sounds=sounds,
        target_seconds=None if minutes is None else minutes * 60.0,
        start_section=from_section,
        only_section=only_section,
        prefetch=voices.prefetch,
    )


@dataclass(frozen=True)
class ScriptEntry:
    """A line of `prtvoice list`."""

    id: str
    title: str
    kind: str
    duration: float | None  # seconds: the target, or an estimate
    estimated: bool
    path: Path
    summary: str
    error: str | None = None


# The default voice (eSpeak NG, "steph" variant) at rate 1.0 speaks this many
# words a second, plus a short fixed time per clip: a least-squares fit over
# every spoken line of the bundled library (269 clips, 2.62 words/s + 0.15 s).
# Used only to estimate a length for `list` without synthesizing anything.
_WORDS_PER_SECOND = 2.6
_SECONDS_PER_CLIP = 0.15


def list_scripts(folders: Sequence[Path] | None = None) -> list[ScriptEntry]:
    """Every script in the library folders, with a length (target or estimate).

    A script that does not load is listed with its error, not dropped.
    """
    from prtvoice.plan import flat_steps
    from prtvoice.script import Breathe, Pause, Say, Sound, load_script

    entries: list[ScriptEntry] = []
    seen: set[str] = set()
    for folder in folders if folders is not None else script_dirs():
        for file in script_files(folder):
            if file.stem in seen:
                continue  # a user's script does not shadow... the bundled one is listed first
            seen.add(file.stem)
            try:
                script = load_script(file, audio_dirs=audio_dirs())
            except ScriptError as exc:
                entries.append(
                    ScriptEntry(file.stem, "", "", None, False, file, "", str(exc.problems[0]))
                )
                continue
            if script.duration is not None:
                seconds, estimated = script.duration, False
            else:
                seconds = 0.0
                for _, step in flat_steps(script):
                    if isinstance(step, Say):
                        words = len(step.text.split())
                        seconds += words / _WORDS_PER_SECOND / step.voice.rate + _SECONDS_PER_CLIP
                    elif isinstance(step, Pause):
                        seconds += step.seconds
                    elif isinstance(step, Breathe):
                        seconds += step.cycle_seconds * step.cycles
                    elif isinstance(step, Sound):
                        seconds += 4.0
                seconds, estimated = float(round(seconds)), True
            entries.append(
                ScriptEntry(
                    script.id, script.title, script.kind, seconds, estimated, file, script.summary
                )
            )
    return entries
