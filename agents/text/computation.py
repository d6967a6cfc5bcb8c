"""What the analyst will compute: one calc tool call, and how to describe it and its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Computation"]


@dataclass(slots=True)
class Computation:
    """One calc tool call that answers the task, and how to describe it."""

    operation: (
        str  # arithmetic, percentage, percent_change, what_percent, statistics, growth, loan, speed, ...
    )
    tool: str  # calc tool name, without the server prefix
    arguments: dict[str, Any]
    label: str  # the computation in words, for the answer
    span: tuple[int, int] = (0, 0)  # where it was found in the normalised text
    wanted: list[str] = field(default_factory=list)  # statistics asked for
    everyday: bool = False  # read from everyday words spread over the text (a price, a tip), not one span
    unit: str = ""  # the unit of the result (km/h, kg, per kg), empty for a plain number
    why: str = ""  # the rule applied, in words (speed = distance ÷ time = 300 km ÷ 2.5 h)
    digits: int = 12  # significant digits shown of a result that is not exact
    word: bool = False  # a word problem: the whole task is the computation, whatever else it says
