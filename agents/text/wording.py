"""How the analyst states a word problem's answer: the figure with its unit, then the rule it applied
(the calc server's steps, cited next to it, show the arithmetic)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from podium.agents.text.computation import Computation

__all__ = ["word_sentence"]

_DIVISION = re.compile(r"^(\S+) / (\S+) = (\S+)$")


def word_sentence(c: Computation, shown: str, steps: Sequence[str] = ()) -> str:
    """One sentence answering the word problem ``c`` whose result the calculator gave as ``shown``."""
    if c.operation == "cheaper":
        return _cheaper(c, steps) or f"The difference in unit price is {shown} {c.unit} ({c.why})."
    figure = f"{shown} {c.unit}".strip() if c.unit else shown
    label = c.label[:1].upper() + c.label[1:]
    return f"{label} is {figure} ({c.why})."


def _cheaper(c: Computation, steps: Sequence[str]) -> str:
    offers = c.label.split("|")
    prices = [m.group(3) for m in (_DIVISION.match(s) for s in steps) if m][:2]
    if len(offers) != 2 or len(prices) != 2:
        return ""
    first, second = float(prices[0]), float(prices[1])
    if first == second:
        return f"Both cost the same per unit: {prices[0]} {c.unit} ({c.why})."
    best, worse = (0, 1) if first < second else (1, 0)
    return (
        f"{offers[best]} is cheaper: {prices[best]} {c.unit}, against {prices[worse]} {c.unit} for "
        f"{offers[worse]} ({c.why})."
    )
