"""The offline planner: the request split into its parts, each part planned against the skills the
registry really holds (cards registered in Redis with heartbeats, ranked by the registry's search)."""

from __future__ import annotations

from typing import Any

import pytest

from podium.agents.orchestrator.catalog import Catalog
from podium.agents.orchestrator.errors import PlanError
from podium.agents.orchestrator.plan import LoopStep, ParallelStep, TaskStep
from podium.agents.orchestrator.planning.offline import OfflinePlanner, research_question, split_request
from podium.bus.keys import Keys
from podium.registry.cards import card_from_json, load_card
from podium.registry.store import Registry
from tests.agents.orchestrator.outside import card as outside_card

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("request_text", "parts"),
    [
        ("What is 15% of 240?", ["What is 15% of 240?"]),
        (
            "How does the with statement work? Cite the sections.",
            ["How does the with statement work? Cite the sections."],
        ),
        ("What does yield do? And also, what is 15% of 240?", ["What does yield do?", "what is 15% of 240?"]),
        ("What is 15% of 240 and how do generators work?", ["What is 15% of 240", "how do generators work?"]),
        ("Explain decorators; compute 2 + 2.", ["Explain decorators", "compute 2 + 2."]),
        ("Compare lists and tuples.", ["Compare lists and tuples."]),
        # statements are context for the question after them, not parts of their own
        (
            "A jacket costs 120 dollars and is 25% off. What do I pay?",
            ["A jacket costs 120 dollars and is 25% off. What do I pay?"],
        ),
        (
            "My rent is 1200 a month. It rises 5%. What is the new rent? How do generators work?",
            ["My rent is 1200 a month. It rises 5%. What is the new rent?", "How do generators work?"],
        ),
        ("What is 15% of 240 and is 7 prime?", ["What is 15% of 240", "is 7 prime?"]),
        ("   ", []),
    ],
)
def test_a_request_is_split_into_its_independent_parts(request_text: str, parts: list[str]) -> None:
    assert split_request(request_text) == parts


@pytest.mark.parametrize(
    ("part", "question"),
    [
        ("Explain Python generators and write a short summary", "Explain Python generators"),
        ("Write a short summary of Python decorators", "Python decorators"),
        ("Summarise how the with statement works", "How the with statement works"),
        ("How does yield work?", "How does yield work?"),
    ],
)
def test_the_researcher_is_asked_the_question_without_how_to_present_it(part: str, question: str) -> None:
    assert research_question(part) == question


async def catalog(redis: Any, keys: Keys, names: tuple[str, ...], outside: bool = False) -> Catalog:
    registry = Registry(redis, keys)
    for name in names:
        await registry.register(load_card(name), f"{name}-1", ttl=60)
    if outside:
        card = card_from_json(
            outside_card("http://127.0.0.1:9/"), source="test", require_interfaces=True, key_name=False
        )
        await registry.register_static(card, name="unit-converter", url="http://127.0.0.1:9/")
    return await Catalog.load(registry, "orchestrator")


ALL = ("researcher", "analyst", "writer", "reviewer", "echo", "orchestrator")


async def test_a_computation_is_planned_for_the_analyst_with_a_number_gate(redis: Any, keys: Keys) -> None:
    plan = await OfflinePlanner().plan("What is 15% of 240?", {}, await catalog(redis, keys, ALL))
    [step] = plan.steps
    assert (
        isinstance(step, TaskStep)
        and step.call.skill == "calculate"
        and step.gate
        and step.gate.check == "number"
    )


async def test_a_documentation_question_is_research_then_a_write_review_loop(redis: Any, keys: Keys) -> None:
    plan = await OfflinePlanner(max_rounds=4).plan(
        "How do Python generators work?", {}, await catalog(redis, keys, ALL)
    )
    research, loop = plan.steps
    assert (
        isinstance(research, TaskStep)
        and research.call.skill == "research"
        and research.gate.check == "covered"
    )
    assert isinstance(loop, LoopStep) and loop.generator.skill == "write" and loop.evaluator.skill == "review"
    assert loop.generator.inputs == {"notes": "research.findings"} and loop.max_rounds == 4
    assert plan.answer == ["answer"]


async def test_the_research_step_asks_the_question_and_the_writer_gets_the_whole_part(
    redis: Any, keys: Keys
) -> None:
    part = "Explain Python generators and write a short summary"
    research, loop = (await OfflinePlanner().plan(part, {}, await catalog(redis, keys, ALL))).steps
    assert isinstance(research, TaskStep) and research.call.text == "Explain Python generators"
    assert isinstance(loop, LoopStep) and loop.part == part and loop.generator.text is None
    assert loop.evaluator.data == {"question": "Explain Python generators"}


async def test_independent_parts_become_parallel_sections(redis: Any, keys: Keys) -> None:
    plan = await OfflinePlanner().plan(
        "What does yield do? And also, what is 15% of 240?", {}, await catalog(redis, keys, ALL)
    )
    join = plan.steps[-1]
    assert isinstance(join, ParallelStep) and join.branches == ["p1-answer", "p2-compute"]
    assert plan.answer == ["p1-answer", "p2-compute"]


async def test_a_part_an_outside_skill_matches_best_goes_to_it(redis: Any, keys: Keys) -> None:
    plan = await OfflinePlanner().plan(
        "Convert 10 miles to km", {}, await catalog(redis, keys, ALL, outside=True)
    )
    [step] = plan.steps
    assert isinstance(step, TaskStep) and step.call.skill == "convert-units"
    assert "registry search" in plan.reason


async def test_without_a_research_skill_the_default_agent_takes_the_part(redis: Any, keys: Keys) -> None:
    plan = await OfflinePlanner(default_agent="echo").plan(
        "Tell me about quokkas", {}, await catalog(redis, keys, ("echo",))
    )
    [step] = plan.steps
    assert isinstance(step, TaskStep) and step.call.agent == "echo" and "default agent" in plan.reason


async def test_a_plan_that_no_alive_agent_can_serve_is_refused(redis: Any, keys: Keys) -> None:
    with pytest.raises(PlanError) as caught:
        await OfflinePlanner(default_agent="researcher").plan(
            "Tell me about quokkas", {}, await catalog(redis, keys, ())
        )
    assert (
        "no alive agent can serve this request" in caught.value.message
        and "podium up" in caught.value.message
    )


async def test_a_part_with_a_computation_but_no_analyst_alive_falls_to_research(
    redis: Any, keys: Keys
) -> None:
    plan = await OfflinePlanner().plan(
        "What is 15% of 240?", {}, await catalog(redis, keys, ("researcher", "echo"))
    )
    assert plan.steps[0].call.skill == "research"  # type: ignore[union-attr]
