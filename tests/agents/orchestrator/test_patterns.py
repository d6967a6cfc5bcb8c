"""Each built-in pattern run in process against a fake dispatcher (tests/agents/orchestrator/fakes.py):
what it sends, what it records, what it makes of the replies, and how many calls the cost estimate
counts for it."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from podium.agents.orchestrator import patterns
from podium.agents.orchestrator.dispatch import CallSpec
from podium.agents.orchestrator.errors import PlanError, StepFailed
from podium.agents.orchestrator.plan import parse_plan, validate_plan
from podium.agents.orchestrator.planning.offline import OfflinePlanner
from podium.agents.orchestrator.results import StepResult
from podium.agents.orchestrator.runner import Runner
from podium.agents.orchestrator.settings import OrchestratorSettings
from podium.agents.orchestrator.state.checkpoints import MemoryCheckpoints
from podium.agents.orchestrator.state.trace import MemoryTrace
from tests.agents.orchestrator.fakes import FakeDispatcher, failing

pytestmark = pytest.mark.anyio
SKILLS = {"research", "write", "review", "calculate", "echo"}


def _plan(*steps: dict[str, Any], answer: list[str] | None = None) -> Any:
    return validate_plan(parse_plan({"steps": list(steps), "answer": answer or []}), SKILLS)


async def _run(
    plan: Any, dispatcher: FakeDispatcher, request: str = "the request"
) -> tuple[Any, MemoryTrace]:
    trace = MemoryTrace("t1")
    runner = Runner(plan, request, dispatcher, trace, MemoryCheckpoints(), "t1", OfflinePlanner())
    results = await runner.run()
    return results, trace


async def test_task_sends_its_text_and_the_inputs_it_names() -> None:
    plan = _plan(
        {"id": "find", "call": {"skill": "research"}},
        {"id": "draft", "call": {"skill": "write", "text": "write it", "inputs": {"notes": "find.result"}}},
    )
    fake = FakeDispatcher()
    results, _ = await _run(plan, fake)
    assert fake.keys() == ["find.1", "draft.1"]
    assert fake.calls[1].text == "write it"
    assert fake.calls[1].data == {"notes": "research: the request"}
    assert results["draft"].agent == "agent-write" and results["draft"].text == "write: write it"
    assert patterns.of(plan.steps[0]).max_calls(plan.steps[0]) == 1


async def test_a_failed_gate_runs_the_task_again_with_the_feedback() -> None:
    def answer(spec: CallSpec) -> tuple[str, dict[str, Any]]:
        return ("42", {"value": 42}) if "feedback" in spec.data else ("no number here", {})

    plan = _plan({"id": "sum", "call": {"skill": "calculate"}, "gate": {"check": "number", "field": "value"}})
    fake = FakeDispatcher(answer)
    results, trace = await _run(plan, fake)
    assert fake.keys() == ["sum.1", "sum.2"] and results["sum"].attempts == 2
    assert [e.state for e in trace.events("gate")] == ["failed", "passed"]


async def test_route_calls_the_first_matching_route_or_the_default() -> None:
    step = {
        "id": "r",
        "pattern": "route",
        "routes": [
            {"when": {"contains": ["invoice"]}, "call": {"skill": "calculate"}},
            {"when": {"matches": "^write"}, "call": {"skill": "write"}},
        ],
        "default": {"skill": "echo"},
    }
    for request, skill, why in [
        ("total of the invoice", "calculate", "route 1 matched (the input mentions invoice)"),
        ("write a poem", "write", "route 2 matched (the input matches '^write')"),
        ("hello", "echo", "no route matched: the default route"),
    ]:
        fake = FakeDispatcher()
        _, trace = await _run(_plan(step), fake, request)
        assert [c.skill for c in fake.calls] == [skill]
        assert fake.reasons == [why] and trace.events("route")[0].reason == why
    assert patterns.get("route").max_calls(_plan(step).steps[0]) == 1


async def test_parallel_joins_what_its_branches_made_and_names_the_missing_ones() -> None:
    plan = _plan(
        {"id": "a", "call": {"skill": "research"}},
        {"id": "b", "call": {"skill": "calculate"}},
        {"id": "both", "pattern": "parallel", "branches": ["a", "b"]},
    )
    results, _ = await _run(plan, FakeDispatcher(failing("calculate")))
    joined = results["both"]
    assert joined.ok and joined.output["missing"] == ["b"] and list(joined.output["sections"]) == ["a"]
    assert results["b"].status == "failed"
    assert patterns.of(plan.steps[2]).max_calls(plan.steps[2]) == 0

    results, _ = await _run(plan, FakeDispatcher(failing("calculate", failing("research"))))
    assert results["both"].status == "failed" and "every branch failed" in results["both"].error


async def test_parallel_refuses_branches_that_wait_for_each_other() -> None:
    with pytest.raises(PlanError, match="are not independent"):
        _plan(
            {"id": "a", "call": {"skill": "research"}},
            {"id": "b", "call": {"skill": "write", "inputs": {"n": "a.result"}}},
            {"id": "both", "pattern": "parallel", "branches": ["a", "b"]},
        )


async def test_vote_takes_the_answer_that_reaches_the_quorum_and_keeps_the_dissent() -> None:
    answers = iter([4, 4, 5])
    fake = FakeDispatcher(lambda spec: ("", {"value": next(answers)}))
    plan = _plan({"id": "v", "pattern": "vote", "call": {"skill": "calculate"}, "voters": 3})
    results, trace = await _run(plan, fake)
    out = results["v"].output
    assert sorted(fake.keys()) == ["v.1.v1", "v.1.v2", "v.1.v3"]
    assert all(c.repeatable for c in fake.calls)
    assert out["value"] == 4 and out["tally"] == {"4": 2, "5": 1} and len(out["dissent"]) == 1
    assert trace.events("vote")[0].state == "decided"
    assert patterns.of(plan.steps[0]).max_calls(plan.steps[0]) == 3


async def test_vote_without_a_quorum_fails_the_step() -> None:
    answers = iter([1, 2, 3])
    plan = _plan({"id": "v", "pattern": "vote", "call": {"skill": "calculate"}, "voters": 3})
    results, trace = await _run(plan, FakeDispatcher(lambda spec: ("", {"value": next(answers)})))
    assert results["v"].status == "failed" and "no decision" in results["v"].error
    assert trace.events("vote")[0].state == "undecided"
    answers = iter([4, 4, 5])
    plan = _plan({"id": "v", "pattern": "vote", "call": {"skill": "calculate"}, "voters": 3, "quorum": 3})
    results, _ = await _run(plan, FakeDispatcher(lambda spec: ("", {"value": next(answers)})))
    assert results["v"].status == "failed"
    assert "the best answer got 2 of 3 votes; the quorum is 3" in results["v"].error
    with pytest.raises(PlanError, match="a quorum of 4 is more than its 3 voters"):
        _plan({"id": "v", "pattern": "vote", "call": {"skill": "calculate"}, "voters": 3, "quorum": 4})


async def test_vote_with_named_agents_pins_one_call_to_each() -> None:
    fake = FakeDispatcher(lambda spec: ("", {"value": 1}))
    plan = _plan({"id": "v", "pattern": "vote", "call": {"skill": "calculate"}, "agents": ["x", "y"]})
    results, _ = await _run(plan, fake)
    assert sorted(c.agent or "" for c in fake.calls) == ["x", "y"]
    assert results["v"].agents == ["x", "y"]


async def test_loop_revises_from_the_feedback_until_the_evaluator_passes() -> None:
    verdicts = iter(["revise", "pass"])

    def answer(spec: CallSpec) -> tuple[str, dict[str, Any]]:
        if spec.skill == "review":
            verdict = next(verdicts)
            return verdict, {"verdict": verdict, "feedback": [{"message": "cite the docs"}]}
        return ("draft 2" if "feedback" in spec.data else "draft 1"), {}

    plan = _plan(
        {
            "id": "w",
            "pattern": "loop",
            "generator": {"skill": "write"},
            "evaluator": {"skill": "review"},
            "maxRounds": 3,
        }
    )
    fake = FakeDispatcher(answer)
    results, trace = await _run(plan, fake)
    assert fake.keys() == ["w.1.r1.gen", "w.1.r1.eval", "w.1.r2.gen", "w.1.r2.eval"]
    assert fake.calls[2].data["draft"] == "draft 1" and fake.calls[2].data["feedback"][0]["message"]
    assert fake.calls[3].data["draft"] == "draft 2"
    out = results["w"].output
    assert out["accepted"] is True and len(out["rounds"]) == 2 and results["w"].text == "draft 2"
    assert [e.state for e in trace.events("loop")] == ["revise", "accepted"]
    assert patterns.of(plan.steps[0]).max_calls(plan.steps[0]) == 6


async def test_loop_locals_are_refused_outside_a_loop() -> None:
    with pytest.raises(PlanError, match=r"uses '\$gen\.result' outside a loop"):
        _plan({"id": "a", "call": {"skill": "write", "inputs": {"d": "$gen.result"}}})
    with pytest.raises(PlanError, match="outside a dynamic step"):
        _plan({"id": "a", "call": {"skill": "write", "inputs": {"d": "$item"}}})


async def test_dynamic_creates_one_worker_per_item() -> None:
    def answer(spec: CallSpec) -> tuple[str, dict[str, Any]]:
        if spec.skill == "research":
            return "topics", {"topics": ["redis", "mcp", "a2a"]}
        return f"about {spec.text}", {}

    plan = _plan(
        {"id": "list", "call": {"skill": "research"}},
        {
            "id": "each",
            "pattern": "dynamic",
            "over": "list.topics",
            "worker": {"skill": "write", "text": "{index}: {item}"},
            "maxWorkers": 2,
        },
    )
    fake = FakeDispatcher(answer)
    results, trace = await _run(plan, fake)
    workers = sorted(fake.calls[1:], key=lambda c: c.key)
    assert [(c.key, c.text) for c in workers] == [("each.1.w1", "1: redis"), ("each.1.w2", "2: mcp")]
    assert [w["item"] for w in results["each"].output["workers"]] == ["redis", "mcp"]
    assert trace.events("dynamic")[0].state == "2 workers"
    assert patterns.of(plan.steps[1]).max_calls(plan.steps[1]) == 2


async def test_a_step_whose_input_failed_is_skipped_but_a_join_still_runs() -> None:
    plan = _plan(
        {"id": "a", "call": {"skill": "research"}},
        {"id": "b", "call": {"skill": "calculate"}},
        {"id": "uses", "call": {"skill": "write", "inputs": {"n": "b.result"}}},
        {"id": "both", "pattern": "parallel", "branches": ["a", "b"]},
    )
    results, _ = await _run(plan, FakeDispatcher(failing("calculate")))
    assert results["uses"].status == "skipped" and results["both"].ok


async def test_every_builtin_pattern_is_registered_with_its_step_model() -> None:
    assert patterns.names() == ("task", "route", "parallel", "vote", "loop", "dynamic")
    for pattern in patterns.patterns():
        assert pattern.step.model_fields["pattern"].default == pattern.name
        assert pattern.summary


async def test_a_pattern_raising_step_failed_fails_its_step() -> None:
    class Broken(patterns.Pattern):
        name = "task"
        step = patterns.get("task").step
        summary = "one call"

        async def run(self, step: Any, ctx: patterns.StepContext) -> StepResult:
            raise StepFailed(f"step {step.id!r}: broken")

    original = patterns.get("task")
    patterns.register(Broken())
    try:
        results, _ = await _run(_plan({"id": "a", "call": {"skill": "echo"}}), FakeDispatcher())
    finally:
        patterns.register(original)
    assert results["a"].status == "failed" and results["a"].error == "step 'a': broken"


async def test_every_independent_step_of_a_wide_plan_is_in_flight_at_once_by_default() -> None:
    """A plan of 32 independent steps keeps 32 delegations in flight under the default settings (a cap of
    16 made the second half wait for the first: twice the wall time of one branch)."""
    width = 32
    all_in = anyio.Event()

    class Gathering(FakeDispatcher):
        in_flight = peak = 0

        async def call(self, spec: CallSpec, *, reason: str = "") -> Any:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            if self.in_flight == width:
                all_in.set()
            with anyio.move_on_after(5):  # without every call in flight, the run still ends (and fails below)
                await all_in.wait()
            self.in_flight -= 1
            return await super().call(spec, reason=reason)

    plan = _plan(*({"id": f"s{i}", "call": {"skill": "echo"}} for i in range(width)))
    fake = Gathering()
    trace = MemoryTrace("t1")
    runner = Runner(plan, "wide", fake, trace, MemoryCheckpoints(), "t1", OfflinePlanner(),
                    max_parallel=OrchestratorSettings().max_parallel)  # fmt: skip
    results = await runner.run()
    assert len(results) == width and fake.peak == width
