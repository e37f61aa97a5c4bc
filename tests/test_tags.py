"""Tags and chapters: ffmetadata text, and ID3 CHAP/CTOC read back by mutagen and ffprobe."""

from __future__ import annotations

import subprocess

import numpy as np
from export_helpers import HERE, VOICE, ffprobe

from prtvoice.ffmpeg import find_ffmpeg
from prtvoice.plan import plan_script
from prtvoice.script import Pause, Say, Script, Section
from prtvoice.tags import Chapter, Tags, chapters_for, ffmetadata, tags_for, write_id3


def test_ffmetadata_escapes_and_lists_chapters():
    tags = Tags(title="A=B; #1 \\ ok", artist="prtvoice", album="x", track=(2, 5))
    text = ffmetadata(tags, [Chapter("One; two", 0, 1500)])
    assert text.startswith(";FFMETADATA1\n")
    assert "title=A\\=B\\; \\#1 \\\\ ok" in text
    assert "track=2/5" in text
    assert "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1500\ntitle=One\\; two" in text


def test_chapters_skip_empty_sections(options, fake_speech, fake_sounds):
    sections = (
        Section("First", (Say("Hello there.", VOICE, HERE),), HERE),
        Section("Empty", (Pause(0.0, False, HERE),), HERE),
        Section("Last", (Pause(2.0, False, HERE),), HERE),
    )
    script = Script(
        path=HERE.file,
        id="c",
        title="C",
        kind="custom",
        summary="s",
        language="en",
        duration=None,
        voice=VOICE,
        ambience=None,
        variables={},
        sections=sections,
        where=HERE,
    )
    plan = plan_script(script, options=options, speech=fake_speech, sounds=fake_sounds)
    chapters = chapters_for(plan)
    assert [c.title for c in chapters] == ["First", "Last"]
    assert chapters[-1].end_ms == plan.frames * 1000 // plan.sample_rate
    tags = tags_for(plan, artist="a", album="b", track=(1, 3))
    assert "c" in tags.comment and tags.track == (1, 3)


def _silent_mp3(path, seconds: int = 3) -> None:
    pcm = (0.1 * np.sin(np.arange(44100 * seconds) / 10)).astype("<f4").tobytes()
    subprocess.run(
        [
            find_ffmpeg(),
            "-v",
            "error",
            "-f",
            "f32le",
            "-ar",
            "44100",
            "-ac",
            "1",
            "-i",
            "-",
            "-c:a",
            "libmp3lame",
            str(path),
        ],
        input=pcm,
        check=True,
    )


def test_id3_chapters_stay_in_order_in_the_file(tmp_path):
    # mutagen sorts frames by size; ffprobe and some players list CHAP frames in
    # file order, so titles of very different lengths once came out shuffled.
    mp3 = tmp_path / "order.mp3"
    _silent_mp3(mp3, seconds=14)
    titles = [
        "Arriving",
        "Five things you can see",
        "One",
        "Here and now",
        "a",
        "bb",
        "Two things you can smell",
        "e",
        "Ünïcode ✓",
        "Closing",
        "x",
        "yy",
        "zzz",
        "w",
    ]
    chapters = [Chapter(t, i * 1000, (i + 1) * 1000) for i, t in enumerate(titles)]
    write_id3(mp3, Tags("Title", "Artist", "Album"), chapters)
    found = ffprobe(mp3, "-show_chapters")["chapters"]
    assert [c["tags"]["title"] for c in found] == titles


def test_id3_chapters_read_back(tmp_path):
    mp3 = tmp_path / "t.mp3"
    _silent_mp3(mp3)
    chapters = [Chapter("Arriving", 0, 1000), Chapter("Ümlaut part", 1000, 3000)]
    write_id3(mp3, Tags("Title", "Artist", "Album", comment="id x", track=(3, 4)), chapters)
    from mutagen.id3 import ID3

    id3 = ID3(mp3)
    assert id3.version[:2] == (2, 3)
    assert str(id3["TIT2"]) == "Title" and str(id3["TRCK"]) == "3/4"
    children = id3.getall("CTOC")[0].child_element_ids
    assert [c.rstrip("-") for c in children] == ["chp0", "chp1"]
    assert [id3.getall("CHAP")[i].element_id in children for i in range(2)] == [True, True]
    found = ffprobe(mp3, "-show_chapters")["chapters"]
    assert [(c["tags"]["title"], c["start_time"], c["end_time"]) for c in found] == [
        ("Arriving", "0.000000", "1.000000"),
        ("Ümlaut part", "1.000000", "3.000000"),
    ]
