"""Re-exports in one pass at the gain the script's last export settled on (GainMemory).

Real eSpeak NG speech, the real renderer and real ffmpeg, as in test_export.py.
"""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
from export_helpers import EspeakVoices, decode, make_plan, session_script

from prtvoice import export as exporting
from prtvoice.encode import FORMATS
from prtvoice.gain_memory import GainMemory, Recalled
from prtvoice.options import Options
from prtvoice.sounds import SoundBank

SR = Options().export_sample_rate


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    options = Options().for_export()
    voices = EspeakVoices(tmp_path_factory.mktemp("espeak"), sample_rate=SR)
    sounds = SoundBank(sample_rate=SR)
    plan = make_plan(session_script(2), voices, sounds, options)
    blocks = exporting.blocks_from_plan(plan, voices=voices, sounds=sounds, options=options)
    return plan, blocks, options


def export(real, target, memory):
    plan, blocks, options = real
    return exporting.export_plan(plan, blocks=blocks, target=target, options=options, memory=memory)


def key_of(real, memory):
    plan, _, options = real
    return memory.key(
        script=str(plan.script.path), fmt="mp3", sample_rate=SR,
        loudness_lufs=options.loudness_lufs, true_peak_db=options.true_peak_db,
    )  # fmt: skip


def test_a_re_export_is_one_pass_with_the_same_audio(real, tmp_path):
    memory = GainMemory(tmp_path / "gains")
    first = export(real, tmp_path / "first.mp3", memory)
    assert first.passes == 2  # nothing remembered yet: measured, then encoded
    assert memory.recall(key_of(real, memory)) == Recalled(first.gain_db, -1.8)
    again = export(real, tmp_path / "again.mp3", memory)
    assert again.passes == 1
    assert again.gain_db == first.gain_db
    # What it measured going out meets the target, and the decoded files are the same audio.
    assert again.loudness_lufs == pytest.approx(-16.0, abs=exporting.ONE_PASS_TOLERANCE_LU)
    assert again.true_peak_db <= -1.0 - exporting.CODEC_HEADROOM_DB["mp3"]
    a = decode(tmp_path / "first.mp3", sample_rate=SR)
    b = decode(tmp_path / "again.mp3", sample_rate=SR)
    np.testing.assert_array_equal(a, b)
    assert pyloudnorm.Meter(SR).integrated_loudness(b.astype(np.float64)) == pytest.approx(
        -16.0, abs=0.6
    )


def test_a_remembered_gain_that_misses_is_measured_and_encoded_again(real, tmp_path):
    memory = GainMemory(tmp_path / "gains")
    key = key_of(real, memory)
    memory.remember(key, Recalled(gain_db=9.0, limit_db=None))  # far too loud, no limiter
    result = export(real, tmp_path / "out.mp3", memory)
    assert result.passes >= 3  # the missed one, then measuring and encoding
    assert result.loudness_lufs == pytest.approx(-16.0, abs=0.15)
    assert result.true_peak_db <= -1.0
    assert memory.recall(key) == Recalled(result.gain_db, -1.8)  # corrected for next time
    x = decode(tmp_path / "out.mp3", sample_rate=SR)
    assert pyloudnorm.Meter(SR).integrated_loudness(x.astype(np.float64)) == pytest.approx(
        -16.0, abs=0.6
    )


@pytest.mark.parametrize("text", ["not json", '{"gain_db": "loud"}', '{"gain_db": NaN}', "[]"])
def test_a_damaged_entry_is_a_miss_and_is_rewritten(real, tmp_path, text):
    memory = GainMemory(tmp_path / "gains")
    path = memory.folder / f"{key_of(real, memory)}.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    result = export(real, tmp_path / "out.mp3", memory)
    assert result.passes == 2
    assert memory.recall(key_of(real, memory)) == Recalled(result.gain_db, -1.8)


def test_a_memory_that_cannot_be_written_changes_nothing(real, tmp_path):
    blocker = tmp_path / "gains"
    blocker.write_text("a file where the folder would be")
    result = export(real, tmp_path / "out.mp3", GainMemory(blocker))
    assert result.passes == 2 and (tmp_path / "out.mp3").is_file()
    assert result.loudness_lufs == pytest.approx(-16.0, abs=0.15)


def test_the_key_tells_scripts_formats_and_targets_apart():
    base = dict(script="/a/x.yaml", fmt="mp3", sample_rate=SR, loudness_lufs=-16.0,
                true_peak_db=-1.0)  # fmt: skip
    keys = {GainMemory.key(**base)}
    for change in (
        {"script": "/a/y.yaml"}, {"fmt": "m4a"}, {"sample_rate": 44100},
        {"loudness_lufs": -19.0}, {"true_peak_db": -2.0},
    ):  # fmt: skip
        keys.add(GainMemory.key(**{**base, **change}))
    assert len(keys) == 6
    assert FORMATS["mp3"].name == "mp3"
