"""The command line: one thin client of the prtvoice library.

Only this module prints or exits. Results go to stdout, messages to stderr;
every failure is one line (or one line per problem) naming where it is, with
one exit status per kind (prtvoice.errors.ExitStatus) and no traceback unless
`--traceback` is given.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional  # noqa: UP035 - Typer reads these at run time

import typer

from prtvoice import __version__
from prtvoice.errors import ExitStatus, PrtvoiceError, ScriptError

app = typer.Typer(
    name="prtvoice",
    help=(
        "Offline voice-guided exercises for Pain Reprocessing Therapy practice: "
        "check, outline, play and export YAML exercise scripts.\n\n"
        "PRT is for chronic pain that a clinician has found is not caused by an ongoing "
        "injury or disease. prtvoice does not treat anything; talk to a clinician."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"traceback": False}


def _err(message: str) -> None:
    typer.echo(message, err=True)


def handles_errors(command):
    """Turn the library's errors into `error: ...` lines and exit statuses."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ScriptError as exc:
            if _state["traceback"]:
                raise
            for problem in exc.problems:
                _err(f"error: {problem}")
            count = len(exc.problems)
            if count > 1:
                _err(f"{count} problems in {exc.problems[0].file}")
            raise typer.Exit(int(exc.exit_status)) from None
        except PrtvoiceError as exc:
            if _state["traceback"]:
                raise
            _err(f"error: {exc}")
            raise typer.Exit(int(exc.exit_status)) from None
        except KeyboardInterrupt:
            _err("stopped")
            raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"prtvoice {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show Python tracebacks (for developers).")
    ] = False,
) -> None:
    _state["traceback"] = traceback


# Options shared by several commands -------------------------------------------------

SetOption = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--set", "-s", metavar="KEY=VALUE", help="Set a script variable (repeatable)."),
]
VarsOption = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--vars", metavar="FILE", help="A YAML file of your own variables (name, area, ...)."),
]
MinutesOption = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option("--minutes", "-m", help="Stretch or shrink flexible pauses to last this long."),
]
ScriptArgument = Annotated[
    str, typer.Argument(metavar="SCRIPT", help="A script file, or the id of a bundled script.")
]


def _config():
    from prtvoice.config import load_config

    return load_config()


# check -----------------------------------------------------------------------------


@app.command()
@handles_errors
def check(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Script files to validate.")],
    sets: SetOption = None,
    vars_file: VarsOption = None,
) -> None:
    """Validate scripts; report every problem as FILE:LINE:COL: message.

    Exits 0 when every file passes, 1 when any has problems.

    \b
    Example:
      prtvoice check scripts/*.yaml
    """
    from prtvoice import session
    from prtvoice.script import load_script

    overrides = session.parse_sets(sets or [])
    if vars_file is not None:
        from prtvoice.variables import load_variables

        overrides = {**load_variables(vars_file), **overrides}
    failed = 0
    for file in files:
        try:
            load_script(file, overrides=overrides, audio_dirs=session.audio_dirs())
        except ScriptError as exc:
            failed += 1
            for problem in exc.problems:
                _err(f"error: {problem}")
            continue
        typer.echo(f"ok: {file}")
    if failed:
        _err(f"{failed} of {len(files)} file(s) have problems")
        raise typer.Exit(int(ExitStatus.INPUT))


# outline ---------------------------------------------------------------------------


@app.command()
@handles_errors
def outline(
    script: ScriptArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON (the contract's form).")] = False,
    minutes: MinutesOption = None,
    sets: SetOption = None,
    vars_file: VarsOption = None,
) -> None:
    """Show the planned timeline: when each line, pause, sound and breath happens.

    Speech lengths come from the real voice, so the times are exact.

    \b
    Examples:
      prtvoice outline grounding
      prtvoice outline my-script.yaml --minutes 10 --json
    """
    from prtvoice import session
    from prtvoice.plan import clock

    config = _config()
    loaded = session.load(script, sets=session.parse_sets(sets or []), vars_file=vars_file)
    options = session.options_from(config)
    voices = session.voice_bank(config, options)
    try:
        plan = session.make_plan(
            loaded, voices=voices, sounds=session.sound_bank(options), options=options, minutes=minutes
        )
    finally:
        voices.close()
    if as_json:
        typer.echo(json.dumps(plan.to_json(), indent=2, ensure_ascii=False))
        return
    sr = plan.sample_rate
    typer.echo(f"{plan.script.title}  ({plan.script.id}, {plan.script.kind})  {clock(plan.seconds)}")
    flex = plan.flex
    if flex.count:
        verb = f"scaled x{flex.scale:.2f} to meet the target" if flex.target_frames else "not scaled (no target)"
        typer.echo(
            f"{flex.count} flexible pause(s): {clock(flex.nominal_frames / sr)} nominal, "
            f"{clock(flex.scaled_frames / sr)} as planned, {verb}"
        )
    current = -1
    for event in plan.events:
        if event.section != current:
            current = event.section
            typer.echo(f"\n== {current + 1}. {plan.sections[current].title}")
        what = _describe(event, sr)
        typer.echo(f"{clock(event.start / sr):>9}  {what}")
    typer.echo(f"{clock(plan.seconds):>9}  end")


def _describe(event, sample_rate: int) -> str:
    from prtvoice.plan import clock

    length = clock(event.length / sample_rate)
    if event.kind == "say":
        return f"say    “{event.text}”"
    if event.kind == "pause":
        return f"pause  {length}{' (flexible)' if event.flexible else ''}"
    if event.kind == "sound":
        return f"sound  {event.sound.name} ({length})"
    cues = " + ".join(c for c, on in (("tone", event.tone), (f"“{event.text}”", event.text)) if on)
    return f"{event.kind:<6} {length}{'  ' + cues if cues else ''}"


# list ------------------------------------------------------------------------------


@app.command("list")
@handles_errors
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of objects.")] = False,
) -> None:
    """List the bundled scripts and your own (from your scripts folder).

    Duration is the script's target length, or an estimate marked ~.

    \b
    Example:
      prtvoice list --json
    """
    from prtvoice import session
    from prtvoice.plan import clock

    entries = session.list_scripts()
    if as_json:
        typer.echo(json.dumps([
            {"id": e.id, "title": e.title, "kind": e.kind,
             "duration": None if e.duration is None else round(e.duration, 1),
             "estimated": e.estimated, "summary": e.summary, "path": str(e.path),
             **({"error": e.error} if e.error else {})}
            for e in entries
        ], indent=2, ensure_ascii=False))
        return
    if not entries:
        typer.echo("no scripts found")
        return
    width = max(len(e.id) for e in entries)
    for e in entries:
        if e.error:
            typer.echo(f"{e.id:<{width}}  (does not load: {e.error})")
            continue
        length = ("~" if e.estimated else "") + clock(e.duration or 0)
        typer.echo(f"{e.id:<{width}}  {e.kind:<19} {length:>8}  {e.title}")


# voices ----------------------------------------------------------------------------


@app.command()
@handles_errors
def voices(
    language: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--language", "-l", help="Only voices for this language (en, de, ...)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the voices of the configured text-to-speech engine.

    Choose one in a script (voice: {name: ...}) by id or by part of its name.

    \b
    Example:
      prtvoice voices --language en
    """
    from prtvoice.tts import make_engine

    engine = make_engine(_config())
    found = engine.voices()
    if language:
        wanted = language.casefold()
        found = [v for v in found if any(lang.casefold().startswith(wanted) for lang in v.languages)
                 or wanted in v.id.casefold()]
    if as_json:
        typer.echo(json.dumps([{"id": v.id, "name": v.name, "languages": list(v.languages)}
                               for v in found], indent=2, ensure_ascii=False))
        return
    width = max((len(v.id) for v in found), default=0)
    for v in found:
        typer.echo(f"{v.id:<{width}}  {v.name}  ({', '.join(v.languages)})")


# schema ----------------------------------------------------------------------------


@app.command()
@handles_errors
def schema(
    path: Annotated[bool, typer.Option("--path", help="Print the schema file's path instead.")] = False,
) -> None:
    """Print the JSON Schema of the script format, for editors.

    \b
    Point a YAML language server at it with a first line like:
      # yaml-language-server: $schema=<the path from `prtvoice schema --path`>
    """
    from prtvoice.schema import schema as load_schema
    from prtvoice.schema import schema_path

    if path:
        typer.echo(str(schema_path()))
    else:
        typer.echo(json.dumps(load_schema(), indent=2))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C outside a command
        sys.stderr.write("stopped\n")
        sys.exit(int(ExitStatus.INTERRUPTED))
