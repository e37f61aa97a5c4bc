"""The fast slice of the fuzzer (tests/fuzz/): loader + planner never fail badly.

Every document ends in a ScriptError whose problems all have a file, line >= 1
and col >= 1, or in a valid plan; never another exception, never over a second.
Longer runs: `python -m tests.fuzz.fuzz_scripts --seconds 600`.
"""

from __future__ import annotations

import random
import time

import pytest
from fuzz import fuzz_scripts
from fuzz.fuzz_scripts import Fuzzer, Sandbox, corpus_files, fuzz
from fuzz.mutations import MUTATORS, mutate, random_document
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prtvoice.errors import ScriptError
from prtvoice.script import load_script

CORPUS = [path.read_bytes() for path in corpus_files()]


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory) -> Fuzzer:
    return Fuzzer(Sandbox.make(tmp_path_factory.mktemp("fuzz")))


def assert_ok(fuzzer: Fuzzer, doc: bytes, applied: list[str]) -> fuzz_scripts.Outcome:
    outcome = fuzzer.feed(doc, applied)
    assert outcome.kind != "failure", f"{applied}: {outcome.detail}\n{doc[:400]!r}"
    return outcome


def test_the_corpus_is_the_library_and_the_goldens():
    names = {path.name for path in corpus_files()}
    assert {"grounding.yaml", "opening.yaml", "good-all-steps.yaml", "bad-tags.yaml"} <= names
    assert len(CORPUS) > 50


def test_pristine_corpus_plans_or_errors_cleanly(fuzzer):
    kinds = {assert_ok(fuzzer, doc, ["pristine"]).kind for doc in CORPUS}
    assert kinds == {"plan", "error"}  # the goldens hold both, and both are fine


def test_a_few_hundred_mutants(tmp_path):
    started = time.monotonic()
    result = fuzz(count=400, seed=1234, workdir=tmp_path)
    assert result.tried == 400
    assert result.outcomes["failure"] == 0, result.failures[:3]
    # The mix must exercise the planner too, not only the loader's error paths.
    assert result.outcomes["plan"] >= 5 and result.outcomes["error"] >= 300
    assert result.slowest[0] < fuzz_scripts.TIME_LIMIT
    assert time.monotonic() - started < 20


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed_index=st.integers(0, len(CORPUS) - 1),
    mutators=st.lists(st.integers(0, len(MUTATORS) - 1), min_size=1, max_size=4),
    salt=st.integers(0, 2**32 - 1),
)
def test_property_any_chain_of_mutations(fuzzer, seed_index, mutators, salt):
    rng = random.Random(salt)
    doc = CORPUS[seed_index]
    for index in mutators:
        doc = MUTATORS[index](doc, rng)
    assert_ok(fuzzer, doc, [MUTATORS[i].__name__ for i in mutators])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_property_arbitrary_bytes(fuzzer, data):
    assert_ok(fuzzer, data, ["hypothesis-bytes"])


def test_mutate_and_random_documents_are_deterministic_per_seed():
    a = mutate(CORPUS[0], random.Random(7), corpus=CORPUS)
    b = mutate(CORPUS[0], random.Random(7), corpus=CORPUS)
    assert a == b and a[0] != CORPUS[0]
    assert random_document(random.Random(3)) == random_document(random.Random(3))


# ----- what the fuzzer found (each was another exception or over a second) ----------


@pytest.mark.parametrize(
    "value, message",
    [
        ("!!int ''", "'' is not a valid int"),  # was IndexError inside PyYAML
        ("!!timestamp x", None),  # was AttributeError; a non-date stays text
        ("!!float ''", "'' is not a valid float"),
        ("!!bool maybe", "'maybe' is not a valid bool"),
    ],
)
def test_explicit_tags_on_values_they_do_not_fit(script_dir, value, message):
    path = script_dir / "tag.yaml"
    path.write_text(f"prtvoice: 1\ntitle: {value}\nkind: custom\nsections: []\n")
    with pytest.raises(ScriptError) as caught:
        load_script(path)
    found = [(p.line, p.col, p.message) for p in caught.value.problems]
    if message:
        assert (2, 8, message) in found
    else:
        assert all("valid" not in m for _, _, m in found)


def test_empty_nested_repeats_are_refused_fast(script_dir):
    (script_dir / "empty.yaml").write_text("sections: [{title: E, steps: []}]\n")
    path = script_dir / "r.yaml"
    path.write_text(
        "prtvoice: 1\ntitle: T\nkind: custom\nsections:\n- title: A\n  steps:\n"
        "  - repeat: 1000\n    steps: [{repeat: 1000, steps: [{repeat: 1000, steps: "
        "[{include: empty.yaml}, {include: empty.yaml}]}]}]\n"
    )
    started = time.perf_counter()
    with pytest.raises(ScriptError) as caught:
        load_script(path)
    assert time.perf_counter() - started < 0.2  # was 1.3 s: 200000 empty rounds run one by one
    assert (caught.value.line, caught.value.col) == (7, 5)
    assert "run more than 200000 rounds in all" in caught.value.message


def test_include_fan_out_is_bounded(script_dir):
    """Files that include the next one many times multiply without any repeat."""
    (script_dir / "p4.yaml").write_text("sections: [{title: E, steps: []}]\n")
    for level in (3, 2, 1):
        steps = ", ".join([f"{{include: p{level + 1}.yaml}}"] * 200)
        (script_dir / f"p{level}.yaml").write_text(f"sections: [{{title: P, steps: [{steps}]}}]\n")
    path = script_dir / "top.yaml"
    path.write_text(
        "prtvoice: 1\ntitle: T\nkind: custom\nsections: [{title: A, steps: ["
        + ", ".join(["{include: p1.yaml}"] * 200)
        + "]}]\n"
    )
    started = time.perf_counter()
    with pytest.raises(ScriptError) as caught:
        load_script(path)  # 200**4 = 1.6 billion visits without the bound
    assert time.perf_counter() - started < 1.0
    assert "the includes in this script expand more than 200000 times" in caught.value.message
