"""The knob schema (trpo.knobs): one Knob per config field, and validation, parsing and CLI
options derived from it."""

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trpo.cli import build_parser
from trpo.config import ConfigError, TRPOConfig, knob_schema
from trpo.knobs import Knob

SCHEMA = knob_schema()
BOUNDED = {n: k for n, k in SCHEMA.items() if k.kind in ("int", "float") and k.low is not None}


def test_every_field_has_a_knob_with_help_label_and_kind():
    assert set(SCHEMA) == {f.name for f in dataclasses.fields(TRPOConfig)}
    for name, knob in SCHEMA.items():
        assert isinstance(knob, Knob) and knob.help and knob.label and knob.name, name
        default = getattr(TRPOConfig(), name)
        assert knob.problems(default) == [], name  # the default obeys its own schema


def edge_values(knob: Knob) -> tuple[list, list]:
    """(values the bounds accept, values they refuse) at and around the edges."""
    cast = int if knob.kind == "int" else float
    step = 1 if knob.kind == "int" else 1e-9
    good, bad = [], []
    (bad if knob.low_open else good).append(cast(knob.low))
    bad.append(cast(knob.low - step))
    if knob.high is not None:
        (bad if knob.high_open else good).append(cast(knob.high))
        bad.append(cast(knob.high + max(step, abs(knob.high) * 1e-9)))
    return good, bad


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_bounds_are_enforced_exactly_at_the_edges(name):
    knob = BOUNDED[name]
    good, bad = edge_values(knob)
    for value in good:
        assert knob.problems(value) == [], value
    for value in bad:
        [problem] = knob.problems(value)
        assert problem.startswith(knob.name) and knob.bounds_text() in problem
        with pytest.raises(ConfigError) as info:  # and TRPOConfig says the same
            TRPOConfig(**{name: value})
        assert problem in info.value.problems


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_delta_accepts_exactly_the_finite_numbers_in_its_interval(value):
    ok = math.isfinite(value) and 0 < value <= 1
    if ok:
        assert TRPOConfig(delta=value).delta == value
    else:
        with pytest.raises(ConfigError, match=r"delta \(the KL limit\)"):
            TRPOConfig(delta=value)


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("max_backtracks", "7", 7),
        ("total_steps", "1e6", 1_000_000),
        ("total_steps", "1,000,000", 1_000_000),
        ("total_steps", "2.0", 2),
        ("delta", " 0.02 ", 0.02),
        ("normalize_rewards", "yes", True),
        ("normalize_rewards", "False", False),
        ("hidden_sizes", "32, 16", (32, 16)),
    ],
)
def test_parse_reads_what_people_type(name, text, value):
    assert SCHEMA[name].parse(text) == value


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("max_backtracks", "1.5", "max_backtracks (K) must be a whole number, got '1.5'"),
        ("max_backtracks", "", "must be a whole number"),
        ("delta", "abc", "delta (the KL limit) must be a number, got 'abc'"),
        ("delta", "inf", "must be a finite number"),
        ("normalize_rewards", "maybe", "must be true or false"),
        ("hidden_sizes", "64,x", "layer widths"),
    ],
)
def test_parse_refuses_what_is_not_the_knobs_type(name, text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SCHEMA[name].parse(text)


def test_every_cli_option_is_derived_from_the_schema(capsys):
    """`train --help` documents each knob with its schema's help, bounds, typical range and
    unit (compared without whitespace: argparse wraps lines)."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    shown = "".join(capsys.readouterr().out.split())
    for name, knob in SCHEMA.items():
        assert "".join(knob.describe().split()) in shown, name
    for name in ("delta", "alpha", "max_backtracks"):
        assert "".join(f"Allowed: {SCHEMA[name].bounds_text()}".split()) in shown


def test_bounds_text_reads_as_words():
    assert SCHEMA["delta"].bounds_text() == "> 0 and at most 1"
    assert SCHEMA["alpha"].bounds_text() == "strictly between 0 and 1"
    assert SCHEMA["max_backtracks"].bounds_text() == "between 1 and 50"
    assert SCHEMA["cg_residual_tol"].bounds_text() == ">= 0"
    assert SCHEMA["total_steps"].bounds_text() == "between 1 and 10,000,000,000"
