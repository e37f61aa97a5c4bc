"""Pass 1 and the span fit on two cores: the same findings as on one.

The meters' parts on synthetic streams; pass 1 and the fit on the halves' real
~2.2 min plan (eSpeak NG speech, the real renderer), with and without ambience.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
from test_halves import ArraySpan, loud_stream

from prtvoice import export as exporting
from prtvoice import forked, pass1
from prtvoice.errors import EncoderError
from prtvoice.loudness import LoudnessMeter
from prtvoice.options import Options

SR = Options().export_sample_rate
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork: Linux")


def test_a_meter_followed_by_its_later_part_is_one_meter():
    x = loud_stream(SR * 40, seed=8).astype(np.float64)
    hop = round(0.1 * SR)
    cut = 170 * hop
    whole = LoudnessMeter(sample_rate=SR, hop_peaks=True)
    whole.add(x)
    first = LoudnessMeter(sample_rate=SR, hop_peaks=True)
    for at in range(0, cut, 5000):
        first.add(x[at : min(cut, at + 5000)])
    later = LoudnessMeter(sample_rate=SR, hop_peaks=True)
    later.settle(x[cut - hop : cut])
    later.add(x[cut:])
    first.followed_by(later.part())
    np.testing.assert_allclose(first.hop_energies(), whole.hop_energies(), rtol=1e-9)
    np.testing.assert_array_equal(first.hop_peaks(), whole.hop_peaks())
    assert first.frames == whole.frames
    assert abs(first.integrated() - whole.integrated()) < 1e-9
    with pytest.raises(ValueError, match="later part"):  # its filter state is not the end
        first.add(x[:100])


def test_only_a_part_ending_on_a_hop_boundary_is_followed():
    first = LoudnessMeter(sample_rate=SR)
    first.add(np.ones(100))
    with pytest.raises(ValueError, match="hop boundary"):
        first.followed_by(LoudnessMeter(sample_rate=SR).part())


@pytest.fixture
def helpers(monkeypatch) -> list:
    """The work handed to forked helpers (they still run)."""
    handed: list = []
    made = forked.Forked

    def watched(work):
        handed.append(work)
        return made(work)

    monkeypatch.setattr(forked, "Forked", watched)
    return handed


@linux
def test_pass_one_in_two_processes_finds_what_one_pass_finds(long_real, helpers):
    # The real ~2.2 min plan of the halves' tests, with and without an ambience bed.
    plan, blocks, _ = long_real
    one, one_meter = exporting._measure(
        blocks, frames=plan.frames, sample_rate=SR, true_peak=False
    )
    seen = []
    got = pass1.measure_in_two(
        blocks.span, frames=plan.frames, sample_rate=SR,
        progress=lambda done, total: seen.append(done), total=plan.frames,
    )  # fmt: skip
    assert got is not None and len(helpers) == 1  # the later half did go to a helper
    two, two_meter = got
    assert two.frames == one.frames == plan.frames
    assert abs(two.loudness_lufs - one.loudness_lufs) < 1e-9
    assert two.sample_peak_db == one.sample_peak_db
    assert math.isnan(two.true_peak_db) and math.isnan(one.true_peak_db)
    np.testing.assert_allclose(two_meter.hop_energies(), one_meter.hop_energies(), rtol=1e-9,
                               atol=1e-12)  # fmt: skip
    np.testing.assert_array_equal(two_meter.hop_peaks(), one_meter.hop_peaks())
    assert seen == sorted(seen) and seen[-1] == plan.frames


@linux
def test_a_helper_that_fails_is_done_here_with_the_same_result(long_real, monkeypatch):
    plan, blocks, _ = long_real
    expected = pass1.measure_in_two(blocks.span, frames=plan.frames, sample_rate=SR)

    class Dies(forked.Forked):
        def __init__(self, work):
            super().__init__(lambda: os._exit(3))

    monkeypatch.setattr(forked, "Forked", Dies)
    got = pass1.measure_in_two(blocks.span, frames=plan.frames, sample_rate=SR)
    assert got is not None and expected is not None
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1].hop_energies(), expected[1].hop_energies())


def test_pass_one_stays_on_one_core_when_it_should(monkeypatch):
    x = loud_stream(SR * 90)
    source = ArraySpan(x)
    assert pass1.measure_in_two(source.span, frames=SR * 30, sample_rate=SR) is None  # short
    monkeypatch.setattr(pass1, "cores", lambda: 1)
    assert pass1.measure_in_two(source.span, frames=len(x), sample_rate=SR) is None
    monkeypatch.undo()
    monkeypatch.setenv("PRTVOICE_ENCODERS", "1")
    assert pass1.measure_in_two(source.span, frames=len(x), sample_rate=SR) is None


@linux
def test_a_renderer_short_of_the_plan_is_an_error():
    x = loud_stream(SR * 90)
    source = ArraySpan(x)
    with pytest.raises(EncoderError, match="frames"):
        pass1.measure_in_two(source.span, frames=len(x) + 500, sample_rate=SR)


@linux
def test_the_span_fit_with_a_helper_lands_on_the_same_gain(long_real, helpers):
    plan, blocks, _ = long_real
    options = Options().for_export()
    fmt = exporting.format_for("mp3")
    measured, meter = exporting._measure(
        blocks, frames=plan.frames, sample_rate=SR, true_peak=False
    )
    decision = exporting.decide_gain(measured, options=options, fmt=fmt)
    assert decision.limit_db is not None  # eSpeak's peaks: the limiter works here
    fits = [
        exporting._fit_in_spans(
            blocks.span, decision, meter, target=options.loudness_lufs, frames=plan.frames,
            sample_rate=SR, helpers=helpers,
        )
        for helpers in (False, True)
    ]
    assert fits[0] == fits[1]  # the same spans re-rendered, in two processes: bit for bit
    assert helpers  # ...and some of them did go to a helper
