"""Fuzzing the CLI with hypothesis: whatever comes in, the run ends with exit 0, 1 or 2, one
``error:`` line for 2, no traceback, within 5 s of CPU.

The generators are bench/fuzz.py's (driven here by ``st.randoms()``); this is the fast CI profile,
and ``-m slow`` runs the 10,000-case profile recorded in the README.
"""
from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import fuzz  # noqa: E402
from hostile import run_main  # noqa: E402

FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
seeded = st.randoms(use_true_random=False)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Import torch and SymPy once, so no example's time includes the imports."""
    run_main(["eval", "2*dot(x,x)", "x=1,2,3"])


def assert_clean(args: list[str]) -> None:
    out = run_main(args)
    assert fuzz.problems(out) == [], (args, out.stderr)


@FAST
@given(st.binary(max_size=60), st.binary(max_size=30))
def test_random_bytes(expr, value):
    assert_clean(["eval", *fuzz.BUDGET, expr.decode("utf-8", "replace"), "x=" + value.decode("latin-1")])


@FAST
@given(st.text(max_size=40), st.lists(st.text(max_size=12), max_size=3))
def test_random_text_and_arguments(expr, rest):
    assert_clean(["eval", *fuzz.BUDGET, expr, *rest])


@FAST
@given(seeded)
def test_token_soup_from_the_grammar(rng):
    assert_clean(fuzz.token_soup(rng))


@FAST
@given(seeded)
def test_well_formed_expressions_with_random_shapes(rng):
    assert_clean(fuzz.well_formed(rng))


@pytest.mark.slow
def test_ten_thousand_cases():
    assert fuzz.run(10_000, seed=0) == 0


# ----------------------------------------------------------------- differential (issue 19)

import differential  # noqa: E402

def test_differential_against_plain_torch():
    # every non-ok outcome fails, "accepted what torch rejects" included
    counts = differential.run(250, seed=1)
    bad = {k: v for k, v in counts.items() if not k.startswith("ok") and k not in {"peak RSS MiB", "seconds"}}
    assert not bad, counts
    assert counts["ok-0"] > 50 and counts["ok-2"] > 50  # the campaign reaches both sides
