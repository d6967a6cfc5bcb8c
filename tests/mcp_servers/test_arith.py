"""The expression language on its own: values, percent semantics, and everything it must refuse."""

from __future__ import annotations

from decimal import Decimal

import pytest

from podium.mcp_servers import arith
from podium.mcp_servers.errors import ExpressionError


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("2 ** 10", "1024"),
        ("2 ^ 8", "256"),
        ("-2 ** 2", "-4"),
        ("2 ** -1", "0.5"),
        ("2 ** 3 ** 2", "512"),
        ("0.1 + 0.2", "0.3"),
        ("10 / 4", "2.5"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),
        ("17 % 5", "2"),
        ("-17 % 5", "3"),
        ("15%", "0.15"),
        ("15% * 80", "12"),
        ("200 + 10%", "220"),
        ("200 - 10%", "180"),
        ("(100 + 50) + 10%", "165"),
        ("round(2.675, 2)", "2.68"),
        ("round(10 / 3, 4)", "3.3333"),
        ("min(3, 1, 2) + max(4, 5)", "6"),
        ("sqrt(16) + abs(-3)", "7"),
        ("floor(-2.5) + ceil(2.1)", "0"),
        ("log(100, 10)", "2"),
        ("log10(1000)", "3"),
        ("ln(e)", "1"),
        ("1_000_000 * 3", "3000000"),
        (".5 + .5", "1"),
    ],
)
def test_values(source: str, expected: str) -> None:
    assert arith.fmt(arith.evaluate(source).value) == expected


def test_precision_is_fifty_digits() -> None:
    third = arith.evaluate("1 / 3").value
    assert str(third) == "0." + "3" * 50
    assert arith.evaluate("pi").value.as_tuple().digits[:6] == (3, 1, 4, 1, 5, 9)


def test_steps_record_each_operation() -> None:
    result = arith.evaluate("(2 + 3) * 4")
    assert result.steps == ["2 + 3 = 5", "5 * 4 = 20"]
    assert arith.evaluate("200 + 10%").steps == ["200 + 10% (of 200 = 20) = 220"]
    assert arith.evaluate("(-8) ** 2").steps == ["(-8) ** 2 = 64"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os')", "unexpected character"),
        ("__import__(1)", "unknown name '__import__'"),
        ("os.system(1)", "unexpected character '.'"),
        ("(1).real", "unexpected character '.'"),
        ("lambda: 1", "unexpected character ':'"),
        ("lambda", "unknown name 'lambda'"),
        ("x + 1", "unknown name 'x'"),
        ("eval(1)", "unknown name 'eval'"),
        ("open(1)", "unknown name 'open'"),
        ("[1, 2]", "unexpected character '['"),
        ("1 if 1 else 2", "unexpected 'if'"),
        ("9**9**9", "would exceed 1e300"),
        ("10 ** 301", "would exceed 1e300"),
        ("2 ** 1000", "would exceed 1e300"),
        ("exp(1000)", "exceeds 1e300"),
        ("1e300 * 10", "exceeds 1e300"),
        ("1e999999", "exceeds 1e300"),
        ("1 / 0", "division by zero"),
        ("5 // 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "negative power"),
        ("(-8) ** 0.5", "not a real number"),
        ("sqrt(-1)", "not real"),
        ("log(0)", "positive argument"),
        ("round(1.5, 0.5)", "whole number"),
        ("round()", "expected a number"),
        ("sqrt(1, 2)", "takes 1-1 arguments"),
        ("", "empty expression"),
        ("1 +", "found end of expression"),
        ("(1 + 2", "expected ')'"),
        ("3 (4)", "unexpected '('"),
        ("-" * 70 + "1", "nests deeper"),
        ("(" * 70 + "1" + ")" * 70, "nests deeper"),
        ("1" * 101, "longer than 100"),
        ("1+" * 500 + "1", "longer than 1000"),
    ],
)
def test_refused(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=None) as caught:
        arith.evaluate(source)
    assert message in str(caught.value)


def test_tiny_powers_underflow_to_zero_instead_of_running() -> None:
    assert arith.evaluate("0.5 ** 1e200").value == 0
    assert arith.evaluate("1 ** 1e200").value == 1
    assert arith.evaluate("(-1) ** 1e200").value == Decimal(1)


def test_steps_are_bounded() -> None:
    result = arith.evaluate("+".join(["1"] * 450))
    assert result.value == 450
    assert len(result.steps) == arith.MAX_STEPS + 1 and result.steps[-1].startswith("…")


def test_the_depth_limit_is_the_one_it_states() -> None:
    limit = arith_depth()
    for nested in ("(" * limit + "1" + ")" * limit, "-" * limit + "1", "sqrt(" * limit + "1" + ")" * limit):
        assert arith.evaluate(nested).value == 1, nested[:12]  # exactly the limit: accepted
    for nested in ("(" * (limit + 1) + "1" + ")" * (limit + 1), "-" * (limit + 1) + "1"):
        with pytest.raises(ExpressionError, match=f"nests deeper than {limit} levels"):
            arith.evaluate(nested)


def arith_depth() -> int:
    from podium.mcp_servers.expr import MAX_DEPTH

    assert MAX_DEPTH == 60  # what the README and the error promise
    return MAX_DEPTH


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("1e-300 / 1e10", True),
        ("1e-300 * 1e-10", True),
        ("1e-300 / 3", True),
        ("-(1e-300 / 7)", True),
        ("(1e-300 / 1e10) * 1e300", True),  # the tiny intermediate is 0 too, so the product is 0
        ("1e-200 * 1e-150", False),  # beyond what Decimal can hold at all: already exactly 0
    ],
)
def test_results_below_1e_minus_300_become_zero(source: str, said: bool) -> None:
    result = arith.evaluate(source)
    assert result.value == 0, result.value
    assert any("smaller than 1e-300 in magnitude: taken as 0" in s for s in result.steps) is said


def test_tiny_literals_are_refused_and_the_bound_itself_is_kept() -> None:
    with pytest.raises(ExpressionError, match="smaller than 1e-300"):
        arith.evaluate("1e-310 + 1")
    assert arith.evaluate("1e-300").value == Decimal("1e-300")
    assert arith.evaluate("1e-299 / 10").value == Decimal("1e-300")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("2 ** 100", "1267650600228229401496703205376"),
        ("123456789 * 1000", "123456789000"),
        ("99999999999 * 99999999999", "9999999999800000000001"),
        ("2**64 - 1", "18446744073709551615"),
        ("10**200 + 1", "1" + "0" * 199 + "1"),  # far past 50 significant digits, still every one
        ("(10**150 + 7) // 7", str((10**150 + 7) // 7)),
        ("(10**150 + 7) % 10", "7"),
        ("1e20 + 1", "100000000000000000001"),
        ("0.1 + 0.2", "0.3"),
        ("19.99 * 3", "59.97"),
    ],
)
def test_whole_numbers_and_decimals_are_exact(source: str, expected: str) -> None:
    result = arith.evaluate(source)
    assert arith.fmt(result.value) == expected
    assert result.exact


@pytest.mark.parametrize(
    ("source", "shown"),
    [("1/3", "0.333333333333"), ("sqrt(2)", "1.41421356237"), ("2 * pi", "6.28318530718")],
)
def test_rounded_results_are_flagged_and_shown_to_significant_digits(source: str, shown: str) -> None:
    result = arith.evaluate(source)
    assert not result.exact
    assert arith.rounded(result.value) == shown


def test_grouped_puts_the_whole_part_in_threes() -> None:
    assert arith.grouped("1267650600228229401496703205376") == "1,267,650,600,228,229,401,496,703,205,376"
    assert arith.grouped("-1234567.125") == "-1,234,567.125"
    assert arith.grouped("12.5") == "12.5" and arith.grouped("1.5e+60") == "1.5e+60"


@pytest.mark.parametrize("source", ["10**10**10", "2 ** 1000", "10**200 * 10**200", "9**9**9"])
def test_whole_numbers_beyond_the_bound_are_refused_before_computing(source: str) -> None:
    with pytest.raises(ExpressionError, match="1e300"):
        arith.evaluate(source)
