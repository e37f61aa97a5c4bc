"""The command line: one thin client of the prtvoice library.

Only this module prints or exits. Results go to stdout, messages to stderr;
every failure is one line (or one line per problem) naming where it is, with
one exit status per kind (prtvoice.errors.ExitStatus) and no traceback unless
`--traceback` is given.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from prtvoice import __version__, cli_common, cli_play
from prtvoice.errors import AudioDeviceError, ExitStatus, InputError, PrtvoiceError, ScriptError

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
        except (PrtvoiceError, KeyboardInterrupt) as exc:
            if _state["traceback"] and not isinstance(exc, KeyboardInterrupt):
                raise
            status = cli_common.report(exc)
            cli_common.leave_if_portaudio_hung(status)
            raise typer.Exit(status) from None

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


# export ----------------------------------------------------------------------------


@app.command()
@handles_errors
def export(
    scripts: Annotated[
        list[str],
        typer.Argument(
            metavar="SCRIPT...", help="Script files, bundled ids, or folders of scripts."
        ),
    ],
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", metavar="PATH",
                     help="The file to write (one script) or the folder (several or a folder)."),
    ] = None,
    fmt: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--format", "-f", metavar="FORMAT",
                     help="mp3 (default), m4a, opus, ogg, flac or wav; else from -o's suffix."),
    ] = None,
    minutes: MinutesOption = None,
    sets: SetOption = None,
    vars_file: VarsOption = None,
    transcript: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--transcript", "-t", metavar="KINDS",
                     help="Also write transcripts beside the audio: lrc,srt,vtt (any of them)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace files that exist.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")
    ] = False,
) -> None:
    """Export sessions as audio files for a phone or any player.

    Loudness is normalised to -16 LUFS (true peak at most -1 dBTP), with one
    chapter per section and tags. Several scripts, or a folder, export into
    one folder with an M3U8 playlist. A file that exists is only replaced
    with --force; an interrupted export never leaves a broken file.

    \b
    Examples:
      prtvoice export grounding
      prtvoice export grounding -o ~/Music/grounding.m4a --minutes 10
      prtvoice export scripts/ -o phone/ --format opus --transcript lrc
    """
    # Until the work starts a signal ends the export at once (nothing is written yet):
    # raising instead could land inside an import and leave it half done.
    with cli_common.signals_exit_quietly():
        # One script: its speech worker starts first (~0.1-0.2 s, in its own process),
        # beside every check and import below: finding ffmpeg's encoders on a fresh
        # cache (~0.15 s), numpy, the script. Stopped if any of them fails.
        engine = _first_engine(scripts)
        try:
            from prtvoice.ffmpeg import encoders_soon  # (no numpy: the thread starts first)

            # ffmpeg's encoders are asked on a thread (~0.1 s on a fresh cache, in
            # ffmpeg's own process) while the imports and checks below go on.
            encoders_known = encoders_soon()
            from prtvoice import atomic, session
            from prtvoice import export as exporting
            from prtvoice.encode import format_for, format_from_suffix
            from prtvoice.errors import EncoderError, InputError
            from prtvoice.transcript import parse_transcript_kinds

            # Every flag and input is checked before any work.
            try:
                kinds = parse_transcript_kinds(transcript)
            except ValueError as exc:
                raise InputError(f"--transcript: {exc}") from None
            values = session.parse_sets(sets or [])
            sources: list[Path] = []
            batch = len(scripts) > 1
            for spec in scripts:
                path = Path(spec).expanduser()
                if path.is_dir():
                    found = session.script_files(path)
                    if not found:
                        raise InputError(f"{spec} holds no scripts (*.yaml)")
                    sources += found
                    batch = True
                else:
                    sources.append(session.resolve_script(spec))
            suffix_format = None
            if output is not None and not batch and not output.is_dir():
                suffix_format = format_from_suffix(output)
                if suffix_format is None and output.suffix:
                    raise InputError(f"-o {output}: unknown audio suffix {output.suffix!r}; "
                                     "use .mp3, .m4a, .opus, .ogg, .flac or .wav")
            try:
                chosen = format_for(fmt) if fmt else (suffix_format or format_for("mp3"))
            except EncoderError as exc:
                raise InputError(f"--format: {exc}") from None
            if fmt and suffix_format and suffix_format.name != chosen.name:
                raise InputError(f"--format {chosen.name} does not match -o {output} "
                                 f"(a {suffix_format.name} name)")
            session.check_minutes(minutes)
            # ffmpeg and its encoder for the format, before any speech is synthesized.
            from prtvoice.encode import choose_encoder
            from prtvoice.ffmpeg import find_ffmpeg

            encoders_known()
            choose_encoder(chosen, find_ffmpeg())
            # Where everything goes, checked (exists? --force? writable?) before any work.
            if not batch:
                target = output if output is not None else Path(sources[0].stem + chosen.suffix)
                if target.is_dir():
                    target = target / (sources[0].stem + chosen.suffix)
                exporting.check_targets(exporting.target_paths(target, kinds), force=force)
            else:
                folder = output if output is not None else Path("prtvoice-export")
                if folder.exists() and not folder.is_dir():
                    raise InputError(
                        f"-o {folder}: several scripts export into a folder, and this is a file"
                    )
                jobs = exporting.batch_jobs([str(s) for s in sources], folder=folder, fmt=chosen)
                if folder.is_dir():
                    exporting.check_targets(
                        [exporting.playlist_path(folder)]
                        + [p for job in jobs for p in exporting.target_paths(job.target, kinds)],
                        force=force,
                    )
            # Exports plan, render and encode at the speech's own rate (Options.for_export).
            options = session.options_from(_config(), format=chosen.name).for_export()
            preparer = exporting.ScriptPreparer(options=options, sets=tuple(values.items()),
                                                vars_file=vars_file, minutes=minutes)
            show = not quiet and sys.stderr.isatty()
            _import_for_export()
        except BaseException:
            if engine is not None:
                engine.close()
            raise

    with atomic.sigterm_raises(), _progress_bar(show) as progress:
        if not batch:
            from prtvoice.early import start_early

            # A re-export (its gain remembered) encodes in one pass: its ffmpegs start
            # now, while the script is read and planned (~0.1 s of CPU each), and are
            # stopped, their partial files removed, if anything fails before the pass.
            try:
                early = start_early(
                    target, script=sources[0], options=options, force=force,
                    memory=session.gain_memory(), encoders=_encoders(),
                )  # fmt: skip
            except BaseException:
                if engine is not None:
                    engine.close()
                raise
            try:
                prepared = preparer(str(sources[0]), engine=engine)
            except BaseException:
                if early is not None:
                    early.cancel()
                raise
            try:
                result = exporting.export_plan(
                    prepared.plan, blocks=prepared.blocks, target=target, options=options,
                    force=force, transcripts=kinds, progress=progress, memory=prepared.memory,
                    encoders=_encoders(), early=early,
                )
            finally:
                if prepared.close:
                    prepared.close()
            results = [result]
        else:
            folder.mkdir(parents=True, exist_ok=True)
            done = exporting.export_batch(jobs, prepare=preparer, folder=folder, options=options,
                                          force=force, transcripts=kinds, progress=progress)
            results = list(done.results)
    if quiet:
        return
    from prtvoice.plan import clock

    for result in results:
        extra = "".join(f", {p.name}" for p in result.transcripts)
        typer.echo(f"wrote {result.path} ({clock(result.seconds)}, "
                   f"{result.loudness_lufs:.1f} LUFS, {result.true_peak_db:.1f} dBTP{extra})")
    if batch:
        typer.echo(f"wrote {exporting.playlist_path(folder)} ({len(results)} tracks)")


def _first_engine(scripts: list[str]):
    """The speech engine, its worker starting, for an export of one script (None: a batch,
    whose workers each start their own)."""
    if len(scripts) != 1 or Path(scripts[0]).expanduser().is_dir():
        return None
    from prtvoice.tts.engine import start_engine

    return start_engine(_config())


def _encoders() -> int:
    """How many ffmpegs one export may run at once: PRTVOICE_ENCODERS=1 keeps it to one
    (an MP3 is otherwise encoded in halves on two cores and joined: prtvoice.halves)."""
    return 1 if os.environ.get("PRTVOICE_ENCODERS", "").strip() == "1" else 2


def _import_for_export() -> None:
    """Import now what an export imports as it goes, while a signal still ends it quietly:
    once the work starts, SIGINT and SIGTERM raise, and one landing inside an import
    ended the interpreter itself (exit -2 after 'stopped', 1 run in 10 at that moment)."""
    # Some are imported on first use deep inside: ID3 text frames are UTF-16, numpy
    # imports numpy.fft lazily, and pyttsx3's version (in every clip's key) comes
    # from importlib.metadata when its package folder does not tell.
    import difflib  # noqa: F401
    import encodings.utf_8_sig
    import encodings.utf_16
    import encodings.utf_16_le  # noqa: F401
    import fcntl  # noqa: F401
    import wave  # noqa: F401

    import mutagen.id3  # noqa: F401
    import numpy.fft  # noqa: F401
    import soxr  # noqa: F401

    import prtvoice.early
    import prtvoice.paths as paths
    import prtvoice.render
    import prtvoice.synth
    import prtvoice.tts.bank
    import prtvoice.tts.clip
    import prtvoice.tts.espeak
    import prtvoice.tts.pyttsx3_engine
    import prtvoice.variables
    from prtvoice.filters import compiled_sosfilt

    compiled_sosfilt()  # scipy's package and its sosfilt kernel, for the loudness meter
    for folder in (paths.cache_dir, paths.config_path, paths.data_dir, paths.state_dir):
        folder()  # imports platformdirs, if this setup's folders need it (prtvoice.paths)
    prtvoice.tts.espeak.pyttsx3_version()  # importlib.metadata only if the folder does not tell


class _progress_bar:
    """A rich progress bar on stderr when `show`; the core gets a (done, total) callback."""

    def __init__(self, show: bool):
        self.show = show
        self._bar = None
        self._task = None

    def __enter__(self):
        if not self.show:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

        self._bar = Progress("exporting", BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                             console=Console(stderr=True), transient=True)
        self._bar.__enter__()
        self._task = self._bar.add_task("export", total=None)

        def update(done: int, total: int) -> None:
            self._bar.update(self._task, completed=done, total=total)

        return update

    def __exit__(self, *exc_info):
        if self._bar is not None:
            self._bar.__exit__(*exc_info)
        return False


# play ------------------------------------------------------------------------------


@app.command()
@handles_errors
def play(
    script: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(metavar="SCRIPT", help="A script file, or the id of a bundled script."),
    ] = None,
    minutes: MinutesOption = None,
    sets: SetOption = None,
    vars_file: VarsOption = None,
    from_section: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--from", metavar="SECTION",
                     help="Start at this section (1-based number or part of its title)."),
    ] = None,
    only: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--only", metavar="SECTION", help="Play just this section."),
    ] = None,
    device: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--device", "-d", metavar="D",
                     help="Output device: number or part of its name (see --list-devices)."),
    ] = None,
    volume: Annotated[
        float, typer.Option("--volume", metavar="V", help="Start volume, 0 to 1.")
    ] = 1.0,
    ambience: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--ambience", metavar="NAME|off",
                     help="Replace the script's background (a built-in bed or a file), or off."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the section where you last stopped.")
    ] = False,
    list_devices: Annotated[
        bool, typer.Option("--list-devices", help="List the output devices and exit.")
    ] = False,
) -> None:
    """Play a session now, starting at once; keys work with your eyes closed.

    space pause/resume, right/left next/previous section, up/down volume,
    q or Ctrl-C stop with a gentle fade. Stopping remembers the place;
    --resume continues from that section. Without a terminal it just plays.

    \b
    Examples:
      prtvoice play grounding
      prtvoice play somatic-tracking --minutes 12 --set area='left knee'
      prtvoice play body-scan --resume
    """
    if list_devices:
        _print_devices()
        return
    if script is None:
        raise InputError("play needs a SCRIPT (a file or a bundled id; `prtvoice list` shows them)")
    if from_section is not None and only is not None:
        raise InputError("use --from or --only, not both")
    if resume and (from_section is not None or only is not None):
        raise InputError("--resume picks the section itself: leave out --from and --only")
    if not 0 <= volume <= 1:
        raise InputError(f"--volume must be between 0 and 1, got {volume:g}")
    from prtvoice import session

    session.check_minutes(minutes)
    arguments = dict(minutes=minutes, sets=sets, vars_file=vars_file, from_section=from_section,
                     only=only, device=device, volume=volume, ambience=ambience, resume=resume,
                     traceback=_state["traceback"])  # fmt: skip
    if cli_play.hands_off():  # the child of a split start: the parent plays (prtvoice.launch)
        cli_play.hand_off(cli_play.prepare(script, config=_config(), **arguments))
        return
    with cli_common.signals_exit_quietly():
        from prtvoice.device import settle
        from prtvoice.tts.engine import start_engine

        try:
            config = _config()
            engine = start_engine(config)  # first: its worker starts while the rest loads
            try:
                status = cli_play.run(cli_play.prepare(script, config=config, **arguments),
                                      engine=engine)
            finally:
                engine.close()  # idempotent: the voice bank closes it too
        finally:
            # Before any message or exit: PortAudio's loading silences stderr while it
            # runs, and leaving the process in the middle of it can crash it.
            settle()
    if status:
        raise typer.Exit(status)


def _print_devices() -> None:
    from prtvoice.device import device_hint, list_output_devices

    devices = list_output_devices()
    if not devices:  # an empty list and status 0 would read as success
        raise AudioDeviceError(f"no audio output device found: {device_hint()}")
    for d in devices:
        mark = "*" if d["default"] else " "
        typer.echo(f"{mark} {d['index']:>2}  {d['name']}  ({d['max_output_channels']} out, "
                   f"{d['default_samplerate']:g} Hz)")


# doctor ----------------------------------------------------------------------------


@app.command()
@handles_errors
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check what this machine can do: speech, ffmpeg encoders, sound output, folders.

    Says what is missing and how to add it. Exits 0 when everything export
    needs works, 1 otherwise; a missing sound device or PortAudio is only a
    warning (live playback needs it, `prtvoice export` does not).

    \b
    Example:
      prtvoice doctor
    """
    from prtvoice.doctor import export_ready, run_checks

    checks = run_checks()
    ready = export_ready(checks)
    if as_json:
        typer.echo(json.dumps({"ok": ready, "checks": [
            {"name": c.name, "ok": c.ok, "required": c.required, "detail": c.detail, "fix": c.fix}
            for c in checks]}, indent=2, ensure_ascii=False))
    else:
        for c in checks:
            mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
            typer.echo(f"{mark}  {c.name}: {c.detail}")
            if not c.ok and c.fix:
                typer.echo(f"      fix: {c.fix}")
        typer.echo("ready to export" if ready else "not ready to export: fix the FAIL lines above")
    if not ready:
        raise typer.Exit(int(ExitStatus.INPUT))


# new -------------------------------------------------------------------------------


@app.command()
@handles_errors
def new(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write the new script.")],
    start_from: Annotated[
        str,
        typer.Option("--from", metavar="ID|KIND",
                     help="A bundled session id to copy, or a kind for its commented template "
                          "(template:KIND forces the template)."),
    ] = "custom",
    title: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--title", help="The new script's title."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Start a new script from a bundled session or a commented template, ready to edit.

    \b
    Examples:
      prtvoice new my-tracking.yaml --from somatic-tracking
      prtvoice new evening.yaml --from breathing --title "Evening breathing"
      prtvoice new lesson.yaml --from template:education
    """
    from prtvoice import atomic
    from prtvoice.templates import new_script

    if file.suffix not in (".yaml", ".yml"):
        raise InputError(f"{file}: a script file name ends in .yaml")
    atomic.check_target(file, force=force)
    text = new_script(start_from, title=title)
    atomic.write_text(file, text, replace=force)
    typer.echo(f"wrote {file}")
    _err(f"next: edit it, then `prtvoice check {file}` and `prtvoice outline {file}`")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C outside a command
        sys.stderr.write("stopped\n")
        sys.exit(int(ExitStatus.INTERRUPTED))
    finally:
        leave_lightly()


def leave_lightly() -> None:
    """Before the interpreter exits: keep its clean-up from collecting garbage.

    Tearing the modules down, Python runs garbage collections over every object
    left (numpy's, typer's ...): ~80 ms after an export, ~10 ms after a `check`.
    Frozen objects are skipped. Nothing needs collecting by then: files are
    written and closed, processes waited for; objects are still freed as their
    references go, and exit handlers still run.
    """
    import gc

    gc.freeze()
