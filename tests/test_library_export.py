"""Every bundled session exports: one batch of the whole library, read back with ffprobe.

The batch runs through the CLI as a user would (both cores, M3U8 playlist),
to FLAC so lengths can be checked to the sample against each session's plan.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from export_helpers import ffprobe
from typer.testing import CliRunner

from prtvoice import session
from prtvoice.cli import app
from prtvoice.config import Config
from prtvoice.paths import bundled_scripts_dir

runner = CliRunner()
LIBRARY = session.script_files(bundled_scripts_dir())


@pytest.mark.slow
def test_the_whole_library_exports_as_a_batch(tmp_path: Path):
    out = tmp_path / "phone"
    result = runner.invoke(
        app, ["export", str(bundled_scripts_dir()), "-o", str(out), "--format", "flac", "-q"]
    )
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.flac"))
    assert len(files) == len(LIBRARY)
    playlist = (out / next(p.name for p in out.glob("*.m3u8"))).read_text(encoding="utf-8")
    assert playlist.startswith("#EXTM3U")
    assert [line for line in playlist.splitlines() if line.endswith(".flac")] == [
        f.name for f in files
    ]

    config = Config()
    for file in files:
        stream = ffprobe(file, "-show_streams", "-show_format", "-show_chapters")
        tags = {k.lower(): v for k, v in stream["format"]["tags"].items()}
        # The comment names the script: "prtvoice script ID (KIND): summary".
        script_id = tags["comment"].removeprefix("prtvoice script ").split(" ", 1)[0]
        script = session.load(next(p for p in LIBRARY if p.stem == script_id))
        rate = int(stream["streams"][0]["sample_rate"])
        options = session.options_from(config, sample_rate=rate)
        voices = session.voice_bank(config, options)
        try:
            plan = session.make_plan(
                script, voices=voices, sounds=session.sound_bank(options), options=options
            )
        finally:
            voices.close()
        assert int(stream["streams"][0]["duration_ts"]) == plan.frames, file.name
        assert [c["tags"]["title"] for c in stream["chapters"]] == [
            s.title for s in plan.sections if s.end > s.start
        ]
        assert tags["title"] == script.title
