"""Evaluating Podium's arithmetic expressions exactly, with the steps taken.

The syntax lives in :mod:`mcp_servers.expr`. Percentages follow calculator conventions:

- ``15%`` alone is ``0.15``; ``15% * 80`` is ``12``;
- ``a + p%`` and ``a - p%`` add or subtract ``p`` percent *of a*: ``200 + 10%`` is ``220``;
- ``%`` between two operands is the remainder: ``17 % 5`` is ``2`` (floored, like Python).

Whole numbers are exact at any size within the bounds: ``+ - * // % **`` between integers are computed
with Python integers (``2 ** 100`` is 1267650600228229401496703205376, every digit). Everything else is
``decimal.Decimal`` with 50 significant digits, exact for decimal input (money, percentages); a result
that had to be rounded (``1/3``, ``sqrt(2)``) is flagged inexact, so it can be shown to sensible
significant digits instead of as if every digit were meant. Results (and every intermediate value)
stay within 1e-300..1e300 in magnitude: a larger one is refused (powers before they are computed, so
``9**9**9`` fails at once instead of running forever), and a nonzero one smaller than 1e-300 becomes 0,
with a step that says so (``1e-300 / 1e10`` is 0), as a calculator underflows. Literals outside the range
are refused.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from podium.mcp_servers.errors import ExpressionError
from podium.mcp_servers.expr import (
    CONSTANTS,
    CONTEXT,
    MAX_LENGTH,
    MAX_MAGNITUDE,
    Call,
    Node,
    Num,
    Percent,
    Unary,
    parse,
)

__all__ = [
    "CONTEXT",
    "MAX_LENGTH",
    "MAX_STEPS",
    "Evaluation",
    "evaluate",
    "fmt",
    "grouped",
    "operand",
    "rounded",
]

MAX_STEPS = 200


# Normalising a whole number of up to MAX_MAGNITUDE digits must not round it.
_WIDE = CONTEXT.copy()
_WIDE.prec = MAX_MAGNITUDE + 10
SIGNIFICANT = 12  # digits shown of a result that is not exact (an irrational or repeating one)


def fmt(value: Decimal) -> str:
    """A Decimal as people write it: every digit of a whole number; no exponent unless a fraction is
    very large or very small."""
    if value.is_zero():
        return "0"
    value = value.normalize(_WIDE)
    if value == value.to_integral_value() and value.adjusted() <= MAX_MAGNITUDE:
        return format(value, "f")
    if -20 <= value.adjusted() < 50:
        return format(value, "f")
    return format(value, "E").replace("E+", "e+").replace("E-", "e-")


def grouped(text: str) -> str:
    """``1267650600.5`` -> ``1,267,650,600.5``: the whole part of a written number in groups of three."""
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, dot, fraction = digits.partition(".")
    if not whole.isdigit() or "e" in fraction.lower():
        return text
    return f"{sign}{int(whole):,}{dot}{fraction}"


def rounded(value: Decimal, significant: int = SIGNIFICANT) -> str:
    """``value`` to ``significant`` significant digits, trailing zeros dropped (for inexact results)."""
    if value.is_zero():
        return "0"
    places = significant - 1 - value.adjusted()
    return fmt(value.quantize(Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_EVEN, context=_WIDE))


def operand(value: Decimal) -> str:
    """``fmt`` with negative numbers parenthesised, for writing steps such as ``(-8) ** 2 = 64``."""
    text = fmt(value)
    return f"({text})" if text.startswith("-") else text


@dataclass(slots=True)
class Evaluation:
    value: Decimal
    steps: list[str] = field(default_factory=list)
    exact: bool = True  # False when some operation rounded to 50 significant digits


def _integer(value: Decimal) -> int | None:
    if value.is_finite() and value == value.to_integral_value():
        return int(value)
    return None


class Evaluator:
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.irrational = False  # pi or e was used: the result is not exact whatever the digits say

    def step(self, text: str) -> None:
        if len(self.steps) < MAX_STEPS:
            self.steps.append(text)
        elif len(self.steps) == MAX_STEPS:
            self.steps.append("… (further steps omitted)")

    def eval(self, node: Node) -> Decimal:
        return self.bounded(self._eval(node))

    def bounded(self, value: Decimal) -> Decimal:
        """``value``, or 0 when it is nonzero but smaller than 1e-300 in magnitude (an underflow)."""
        if value and value.adjusted() < -MAX_MAGNITUDE:
            self.step(f"{fmt(value)} is smaller than 1e-{MAX_MAGNITUDE} in magnitude: taken as 0")
            return Decimal(0)
        return value

    def _eval(self, node: Node) -> Decimal:
        if isinstance(node, Num):
            if node.value in CONSTANTS.values():
                self.irrational = True
            return node.value
        if isinstance(node, Percent):
            inner = self.eval(node.operand)
            result = inner / 100
            self.step(f"{fmt(inner)}% = {fmt(result)}")
            return result
        if isinstance(node, Unary):
            inner = self.eval(node.operand)
            return -inner if node.op == "-" else +inner
        if isinstance(node, Call):
            return self.call(node)
        if node.op in ("+", "-") and isinstance(node.right, Percent):
            base = self.eval(node.left)
            pct = self.eval(node.right.operand)
            share = base * pct / 100
            result = base + share if node.op == "+" else base - share
            self.step(f"{fmt(base)} {node.op} {fmt(pct)}% (of {fmt(base)} = {fmt(share)}) = {fmt(result)}")
            return result
        left, right = self.eval(node.left), self.eval(node.right)
        result = self.binary(node.op, left, right)
        self.step(f"{operand(left)} {node.op} {operand(right)} = {fmt(result)}")
        return result

    def binary(self, op: str, a: Decimal, b: Decimal) -> Decimal:
        if op in ("/", "//", "%") and b.is_zero():
            raise ExpressionError(f"division by zero in {fmt(a)} {op} 0")
        whole = self.whole(op, a, b)
        if whole is not None:
            return whole
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "//":
            return (a / b).to_integral_value(rounding=decimal.ROUND_FLOOR)
        if op == "%":
            return a - b * (a / b).to_integral_value(rounding=decimal.ROUND_FLOOR)
        return self.power(a, b)

    def whole(self, op: str, a: Decimal, b: Decimal) -> Decimal | None:
        """``a op b`` exactly, with Python integers, when both are whole and so is the result."""
        x, y = _integer(a), _integer(b)
        if x is None or y is None or op == "/":
            return None
        if op == "**":
            if y < 0:
                return None
            self.power_bound(a, b)
            result = x**y  # bounded above: at most MAX_MAGNITUDE digits
        else:
            result = {"+": x + y, "-": x - y, "*": x * y, "//": x // y if y else 0, "%": x % y if y else 0}[
                op
            ]
        value = Decimal(result)
        if value and value.adjusted() > MAX_MAGNITUDE:
            raise ExpressionError(f"{operand(a)} {op} {operand(b)} exceeds 1e{MAX_MAGNITUDE}; refused")
        return value

    def power_bound(self, a: Decimal, b: Decimal) -> float:
        """log10 of ``|a ** b|``; raises ``ExpressionError`` before computing a result beyond the bounds."""
        magnitude = float(b) * math.log10(abs(float(a))) if abs(a) not in (0, 1) else 0.0
        if magnitude > MAX_MAGNITUDE:
            raise ExpressionError(
                f"{operand(a)} ** {operand(b)} would exceed 1e{MAX_MAGNITUDE} (about 10^{magnitude:.0f}); refused"
            )
        return magnitude

    def power(self, a: Decimal, b: Decimal) -> Decimal:
        integral = b == b.to_integral_value()
        if a.is_zero():
            if b < 0:
                raise ExpressionError("zero cannot be raised to a negative power")
            return Decimal(1) if b.is_zero() else Decimal(0)
        if a < 0 and not integral:
            raise ExpressionError(f"{operand(a)} ** {operand(b)} is not a real number")
        magnitude = self.power_bound(a, b)
        if magnitude < -MAX_MAGNITUDE:
            return Decimal(0)
        return a**b

    def call(self, node: Call) -> Decimal:
        args = [self.eval(arg) for arg in node.args]
        result = _FUNCS[node.name](args)
        self.step(f"{node.name}({', '.join(fmt(a) for a in args)}) = {fmt(result)}")
        return result


def _round(args: list[Decimal]) -> Decimal:
    places = args[1] if len(args) > 1 else Decimal(0)
    if places != places.to_integral_value() or abs(places) > MAX_MAGNITUDE:
        raise ExpressionError(f"round(): places must be a whole number within ±{MAX_MAGNITUDE}")
    return args[0].quantize(Decimal(1).scaleb(-int(places)), rounding=decimal.ROUND_HALF_EVEN)


def _positive(name: str, x: Decimal) -> Decimal:
    if x <= 0:
        raise ExpressionError(f"{name}() needs a positive argument, got {fmt(x)}")
    return x


def _sqrt(args: list[Decimal]) -> Decimal:
    if args[0] < 0:
        raise ExpressionError(f"sqrt() of a negative number ({fmt(args[0])}) is not real")
    return args[0].sqrt()


def _log(args: list[Decimal]) -> Decimal:
    x = _positive("log", args[0])
    if len(args) == 1:
        return x.ln()
    base = _positive("log", args[1])
    if base == 1:
        raise ExpressionError("log() base cannot be 1")
    return x.ln() / base.ln()


_FUNCS: dict[str, Callable[[list[Decimal]], Decimal]] = {
    "round": _round,
    "min": min,
    "max": max,
    "sqrt": _sqrt,
    "abs": lambda a: abs(a[0]),
    "floor": lambda a: a[0].to_integral_value(rounding=decimal.ROUND_FLOOR),
    "ceil": lambda a: a[0].to_integral_value(rounding=decimal.ROUND_CEILING),
    "log": _log,
    "ln": lambda a: _positive("ln", a[0]).ln(),
    "log10": lambda a: _positive("log10", a[0]).log10(),
    "exp": lambda a: a[0].exp(),
}


def evaluate(source: str) -> Evaluation:
    """Parse and evaluate ``source``; raises ``ExpressionError`` for anything outside the language or its
    bounds (never executes anything but arithmetic)."""
    tree = parse(source)
    evaluator = Evaluator()
    with decimal.localcontext(CONTEXT) as context:
        context.clear_flags()  # the shared CONTEXT keeps flags from parsing and from other calls
        try:
            value = evaluator.eval(tree)
        except decimal.Overflow:
            raise ExpressionError(f"a result exceeds 1e{MAX_MAGNITUDE}") from None
        except decimal.DivisionByZero:
            raise ExpressionError("division by zero") from None
        except decimal.InvalidOperation as exc:
            raise ExpressionError(f"undefined operation ({exc.__class__.__name__})") from None
        exact = not (context.flags[decimal.Inexact] or context.flags[decimal.Rounded] or evaluator.irrational)
    return Evaluation(value=value, steps=evaluator.steps, exact=exact)
