"""Gates judge outputs (and never crash on malformed ones); synthesis reconciles sources across workers,
keeps the calculator's figures and names gaps and disagreements."""

from __future__ import annotations

from typing import Any

import pytest

from podium.agents.orchestrator.gates import check
from podium.agents.orchestrator.plan import Gate, parse_plan
from podium.agents.orchestrator.results import StepResult
from podium.agents.orchestrator.synth import gather, offline_answer

WRITER = {
    "result": "Generators yield values lazily [1]. The with statement manages context [2].\n\nSources:\n[1] yield — “y”\n[2] with — “w”",
    "sources": [{"marker": 1, "docId": "yield", "quote": "y"}, {"marker": 2, "docId": "with", "quote": "w"}],
}


@pytest.mark.parametrize(
    ("gate", "output", "passed", "reason"),
    [
        ({"check": "covered"}, {"covered": True}, True, "cover"),
        ({"check": "covered"}, {"covered": False, "result": "not covered"}, False, "do not cover"),
        (
            {"check": "passed"},
            {"verdict": "revise", "checks": [{"name": "citations", "passed": False}]},
            False,
            "citations",
        ),
        ({"check": "passed"}, {"verdict": "pass"}, True, "passed"),
        ({"check": "cited"}, WRITER, True, "cites 2"),
        ({"check": "cited"}, {"result": "A claim [3].", "sources": [{"marker": 1}]}, False, "[3]"),
        ({"check": "cited"}, {"result": "No markers."}, False, "cites no source"),
        ({"check": "number"}, {"value": 36}, True, "36"),
        ({"check": "number"}, {"value": "36"}, False, "expected a number"),
        ({"check": "number"}, {"result": "no value field"}, False, "does not fit"),
        ({"check": "nonempty"}, {"result": "", "text": ""}, False, "nothing"),
        ({"check": "equals", "field": "verdict", "value": "pass"}, {"verdict": "pass"}, True, "is 'pass'"),
        ({"check": "matches", "value": r"\b36\b"}, {"result": "15% of 240 = 36"}, True, "matches"),
    ],
)
def test_gates(gate: dict[str, Any], output: dict[str, Any], passed: bool, reason: str) -> None:
    verdict = check(Gate.model_validate(gate), output)
    assert verdict.passed is passed and reason in verdict.reason
    assert bool(verdict.feedback) is (not passed)


def test_a_failed_review_gate_passes_the_reviewers_own_feedback_on() -> None:
    feedback = [{"check": "citations", "message": "cite sentence 2"}]
    verdict = check(Gate(check="passed"), {"verdict": "revise", "feedback": feedback})
    assert verdict.feedback == feedback


def plan_and_results() -> tuple[Any, dict[str, StepResult]]:
    plan = parse_plan(
        {
            "steps": [
                {"id": "write", "part": "Explain generators and with", "call": {"skill": "write"}},
                {"id": "more", "part": "And with again", "call": {"skill": "write"}},
                {"id": "calc", "part": "What is 15% of 240?", "call": {"skill": "calculate"}},
                {"id": "vote", "part": "Vote", "call": {"skill": "calculate"}},
                {"id": "lost", "part": "Something nobody knows", "call": {"skill": "research"}},
            ]
        }
    )
    more = {
        "result": "It enters the context manager [1].\n\nSources:\n[1] with — “w”",
        "sources": [{"marker": 1.0, "docId": "with", "quote": "w"}],  # data parts carry numbers as floats
    }
    calc = {
        "result": "15% of 240 = 36",
        "operation": "percentage",
        "tool": "calc__evaluate",
        "value": 36.0,
        "steps": ["15% = 0.15", "0.15 * 240 = 36"],
    }
    vote = {
        "result": "x = 36",
        "value": 36,
        "tally": {"36": 2, "37": 1},
        "votes": [{}, {}, {}],
        "dissent": [{"voter": 2, "agent": "contrarian", "answer": 37}],
    }
    results = {
        "write": StepResult(step="write", status="completed", output=WRITER, agent="writer"),
        "more": StepResult(step="more", status="completed", output=more, agent="writer"),
        "calc": StepResult(step="calc", status="completed", output=calc, agent="analyst"),
        "vote": StepResult(step="vote", status="completed", output=vote, agent="analyst"),
        "lost": StepResult(
            step="lost",
            status="failed",
            error="gate covered failed",
            output={"covered": False, "result": "The documentation does not cover this question."},
        ),
    }
    return plan, results


def test_synthesis_renumbers_sources_across_workers_and_names_gaps_and_conflicts() -> None:
    plan, results = plan_and_results()
    material = gather("the request with 15% of 240", plan, results)
    answer = offline_answer(material)
    # "with — w" cited by two writers is one source, [2] in both sections
    assert [(s["marker"], s["docId"]) for s in material.sources] == [
        (1, "yield"),
        (2, "with"),
        (3, "calc:evaluate"),
    ]
    assert "The with statement manages context [2]." in answer.text
    assert "It enters the context manager [2]." in answer.text
    assert "15% of 240 = 36 [3]." in answer.text and material.sections[2].figures == ["36"]
    assert "voter 2 (contrarian) answered 37" in answer.text
    assert "Something nobody knows: The documentation does not cover this question." in answer.text
    assert answer.text.index("Not answered:") < answer.text.index("Sources:")
    data = answer.data(plan, results)
    assert data["partial"] is True and len(data["steps"]) == 5


def test_a_skipped_step_names_the_failure_it_depended_on() -> None:
    plan = parse_plan(
        {
            "steps": [
                {"id": "r", "part": "Q", "call": {"skill": "research"}},
                {"id": "w", "part": "Q", "call": {"skill": "write", "inputs": {"notes": "r.findings"}}},
            ]
        }
    )
    results = {
        "r": StepResult(step="r", status="failed", error="researcher is unreachable: connection refused"),
        "w": StepResult(step="w", status="skipped", error="it needs r, which did not complete"),
    }
    material = gather("Q", plan, results)
    assert material.gaps == ["Q: researcher is unreachable: connection refused"]
    assert offline_answer(material).text.startswith("I could not answer this request.")
