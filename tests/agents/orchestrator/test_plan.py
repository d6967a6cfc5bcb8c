"""Plans are data: parsed from JSON (camelCase), validated against the skills alive, every error naming
the step and what is wrong with it."""

from __future__ import annotations

from typing import Any

import pytest

from podium.agents.orchestrator.errors import PlanError
from podium.agents.orchestrator.plan import LoopStep, ParallelStep, VoteStep, parse_plan, validate_plan

SKILLS = {"research", "calculate", "write", "review", "echo"}
AGENTS = {"researcher", "analyst", "writer", "reviewer", "echo"}


def check(data: dict[str, Any]) -> None:
    validate_plan(parse_plan(data), SKILLS, AGENTS)


def test_a_full_plan_parses_with_every_pattern_and_its_dependencies() -> None:
    plan = parse_plan(
        {
            "steps": [
                {
                    "id": "research",
                    "call": {"skill": "research"},
                    "gate": {"check": "covered", "maxAttempts": 1},
                },
                {
                    "id": "calc",
                    "pattern": "route",
                    "routes": [{"when": {"kind": "compute"}, "call": {"skill": "calculate"}}],
                    "default": {"skill": "echo"},
                },
                {"id": "both", "pattern": "parallel", "branches": ["research", "calc"]},
                {"id": "vote", "pattern": "vote", "call": {"skill": "calculate"}, "voters": 3},
                {
                    "id": "answer",
                    "pattern": "loop",
                    "generator": {"skill": "write", "inputs": {"notes": "research.findings"}},
                    "evaluator": {"skill": "review"},
                    "maxRounds": 2,
                },
                {
                    "id": "each",
                    "pattern": "dynamic",
                    "over": "research.findings",
                    "worker": {"skill": "echo"},
                },
            ],
            "answer": ["answer", "vote"],
        }
    )
    validate_plan(plan, SKILLS, AGENTS)
    assert isinstance(plan.steps[2], ParallelStep) and isinstance(plan.steps[3], VoteStep)
    loop = plan.step("answer")
    assert isinstance(loop, LoopStep) and plan.deps(loop) == ["research"]
    assert plan.deps(plan.step("each")) == ["research"]
    assert plan.step("vote").needed == 2  # a majority of 3
    assert plan.answer_steps() == ["answer", "vote"]


def test_without_an_answer_list_the_steps_nothing_depends_on_answer() -> None:
    plan = parse_plan(
        {
            "steps": [
                {"id": "a", "call": {"skill": "echo"}},
                {"id": "b", "call": {"skill": "echo", "inputs": {"x": "a.result"}}},
                {"id": "c", "call": {"skill": "echo"}},
            ]
        }
    )
    assert plan.answer_steps() == ["b", "c"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": []}, "the plan has no steps"),
        (
            {"steps": [{"id": "a", "call": {"skill": "astrology"}}]},
            "step 'a': no agent offers skill 'astrology'",
        ),
        (
            {"steps": [{"id": "a", "call": {"skill": "echo", "agent": "ghost"}}]},
            "step 'a': agent 'ghost' is not registered",
        ),
        (
            {"steps": [{"id": "a", "call": {"skill": "echo"}}, {"id": "a", "call": {"skill": "echo"}}]},
            "step 'a': the id is used twice",
        ),
        (
            {"steps": [{"id": "a", "call": {"skill": "echo"}, "dependsOn": ["zzz"]}]},
            "step 'a': it refers to step 'zzz'",
        ),
        (
            {"steps": [{"id": "a", "call": {"skill": "echo", "inputs": {"x": "a.result"}}}]},
            "step 'a': it cannot depend on or read from itself",
        ),
        (
            {
                "steps": [
                    {"id": "a", "call": {"skill": "echo"}, "dependsOn": ["c"]},
                    {"id": "b", "call": {"skill": "echo"}, "dependsOn": ["a"]},
                    {"id": "c", "call": {"skill": "echo"}, "dependsOn": ["b"]},
                ]
            },
            "form a cycle",
        ),
        (
            {
                "steps": [
                    {"id": "a", "call": {"skill": "echo"}},
                    {"id": "b", "call": {"skill": "echo"}, "dependsOn": ["a"]},
                    {"id": "j", "pattern": "parallel", "branches": ["a", "b"]},
                ]
            },
            "step 'j': branches 'a' and 'b' are not independent",
        ),
        (
            {"steps": [{"id": "v", "pattern": "vote", "call": {"skill": "echo"}, "voters": 2, "quorum": 3}]},
            "step 'v': a quorum of 3 is more than its 2 voters",
        ),
        (
            {"steps": [{"id": "a", "call": {"skill": "echo", "inputs": {"x": "$gen.result"}}}]},
            "step 'a': input 'x' uses '$gen.result' outside a loop",
        ),
        ({"steps": [{"id": "a", "pattern": "teleport"}]}, "step 'a': unknown pattern"),
        ({"steps": [{"id": "1a", "call": {"skill": "echo"}}]}, "a step id is a letter"),
        (
            {"steps": [{"id": "a", "call": {"skill": "echo", "inputs": {"x": "not a ref!"}}}]},
            "is not a reference",
        ),
        (
            {"steps": [{"id": "a", "call": {"skill": "echo"}}], "answer": ["b"]},
            "answer: the plan has no step 'b'",
        ),
        (
            {
                "steps": [
                    {
                        "id": "r",
                        "pattern": "route",
                        "routes": [{"when": {}, "call": {"skill": "echo"}}],
                        "default": {"skill": "echo"},
                    }
                ]
            },
            "needs kind, matches or contains",
        ),
        ("not a plan", "a plan is a JSON object"),
    ],
)
def test_invalid_plans_are_refused_naming_the_step(data: Any, message: str) -> None:
    with pytest.raises(PlanError) as caught:
        check(data)
    assert message in caught.value.message, caught.value.message


def test_plan_json_is_camel_case_and_round_trips() -> None:
    plan = parse_plan({"steps": [{"id": "a", "call": {"skill": "echo"}, "timeoutS": 5, "dependsOn": []}]})
    dumped = plan.model_dump(mode="json", by_alias=True)
    assert dumped["steps"][0]["timeoutS"] == 5 and "timeout_s" not in dumped["steps"][0]
    assert parse_plan(dumped) == plan
