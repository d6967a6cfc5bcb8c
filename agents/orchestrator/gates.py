"""Programmatic checks of a step's output (gates), each with a reason a person or a worker can act on."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from podium.agents.orchestrator.results import RefError, select
from podium.agents.orchestrator.steps import Gate

_MARKER = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    feedback: list[dict[str, Any]] = field(default_factory=list)  # for the step's retry, as review feedback


def check(gate: Gate, output: dict[str, Any]) -> Verdict:
    """Run ``gate`` on ``output``. Never raises: a malformed output fails the gate, naming why."""
    try:
        passed, reason = _CHECKS[gate.check](gate, output)
    except (RefError, TypeError, ValueError) as exc:
        passed, reason = False, f"the output does not fit the {gate.check} check: {exc}"
    feedback = [] if passed else _feedback(gate, output, reason)
    return Verdict(passed, reason, feedback)


def _field(gate: Gate, output: dict[str, Any], default: str) -> Any:
    return select(output, (gate.field or default).split("."))


def _nonempty(gate: Gate, output: dict[str, Any]) -> tuple[bool, str]:
    text = str(output.get("result") or output.get("text") or "").strip()
    others = [k for k, v in output.items() if k not in ("result", "text") and v not in (None, "", [], {})]
    if text or others:
        return True, "the agent returned an answer"
    return False, "the agent returned nothing"


def _covered(gate: Gate, output: dict[str, Any]) -> tuple[bool, str]:
    covered = _field(gate, output, "covered")
    if covered is True:
        return True, "the sources cover the question"
    return False, "the sources found do not cover the question"


def _passed(gate: Gate, output: dict[str, Any]) -> tuple[bool, str]:
    verdict = str(_field(gate, output, "verdict")).lower()
    if verdict == "pass":
        return True, "the review passed"
    failed = [
        c.get("name") for c in output.get("checks") or [] if isinstance(c, dict) and not c.get("passed")
    ]
    what = f" ({', '.join(str(f) for f in failed)})" if failed else ""
    return False, f"the review asked for a revision{what}"


def _cited(gate: Gate, output: dict[str, Any]) -> tuple[bool, str]:
    text = str(_field(gate, output, "result"))
    sources = output.get("sources") or output.get("citations") or []
    markers = {int(m) for m in _MARKER.findall(text)}
    if not markers:
        return False, "the text cites no source"
    if not sources:
        return False, "the text cites sources but lists none"
    missing = sorted(m for m in markers if m < 1 or m > len(sources))
    if missing:
        return (
            False,
            f"the text cites [{'], ['.join(map(str, missing))}] which its {len(sources)} sources do not have",
        )
    return True, f"the text cites {len(markers)} of its {len(sources)} sources"


def _number(gate: Gate, output: dict[str, Any]) -> tuple[bool, str]:
    value = _field(gate, output, "value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False, f"expected a number, got {value!r}"
    return True, f"the result is the number {value:g}"


def _equals(gate: Gate, output: dict[str, Any]) -> tuple[bool, str]:
    value = _field(gate, output, "result")
    if value == gate.value:
        return True, f"{gate.field or 'result'} is {gate.value!r}"
    return False, f"expected {gate.field or 'result'} to be {gate.value!r}, got {value!r}"


def _matches(gate: Gate, output: dict[str, Any]) -> tuple[bool, str]:
    value = str(_field(gate, output, "result"))
    if re.search(str(gate.value or ""), value, re.I):
        return True, f"{gate.field or 'result'} matches {gate.value!r}"
    return False, f"{gate.field or 'result'} does not match {gate.value!r}"


_CHECKS = {
    "nonempty": _nonempty,
    "covered": _covered,
    "passed": _passed,
    "cited": _cited,
    "number": _number,
    "equals": _equals,
    "matches": _matches,
}


def _feedback(gate: Gate, output: dict[str, Any], reason: str) -> list[dict[str, Any]]:
    """What the retried step is told: a review's own feedback when it has some, else the gate's reason."""
    items = output.get("feedback") if gate.check == "passed" else None
    if isinstance(items, list) and items:
        return [i if isinstance(i, dict) else {"message": str(i)} for i in items]
    return [{"check": "general", "message": f"a check of your previous answer failed: {reason}"}]
