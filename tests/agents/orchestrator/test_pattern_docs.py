"""docs/orchestrator.md "Adding a pattern": its module, imported as a module is, registers a pattern
that plans parse, validate, estimate, describe to the planner and run — and that is gone once removed."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from podium.agents.orchestrator import patterns
from podium.agents.orchestrator.approval import estimate_cost
from podium.agents.orchestrator.budget import Spending
from podium.agents.orchestrator.errors import PlanError
from podium.agents.orchestrator.plan import Plan, parse_plan, validate_plan
from podium.agents.orchestrator.planning.model import plan_schema, planner_prompt
from podium.agents.orchestrator.planning.offline import OfflinePlanner
from podium.agents.orchestrator.runner import Runner
from podium.agents.orchestrator.state.checkpoints import MemoryCheckpoints
from podium.agents.orchestrator.state.trace import MemoryTrace
from tests.agents.orchestrator.fakes import FakeDispatcher
from tests.docs import block

pytestmark = pytest.mark.anyio
PLAN = {"steps": [{"id": "c", "pattern": "chain", "links": [{"skill": "research"}, {"skill": "write"}]}]}


@pytest.fixture
def chain(tmp_path: Path) -> Any:
    (tmp_path / "chain_pattern.py").write_text(block("orchestrator.md", "## Adding a pattern"))
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("chain_pattern")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("chain_pattern", None)
        patterns.unregister("chain")


async def test_the_documented_pattern_runs_in_a_plan(chain: Any) -> None:
    plan = validate_plan(parse_plan(PLAN), {"research", "write"})
    assert isinstance(plan.steps[0], chain.ChainStep)
    fake = FakeDispatcher()
    trace = MemoryTrace("t1")
    results = await Runner(
        plan, "what is podium", fake, trace, MemoryCheckpoints(), "t", OfflinePlanner()
    ).run()
    assert fake.keys() == ["c.1.c1", "c.1.c2"]
    assert fake.calls[1].data == {"previous": "research: what is podium"}
    assert results["c"].ok and results["c"].text == "write: what is podium"
    assert [e.state for e in trace.events("step")] == ["started", "completed"]
    # the plan round-trips as JSON, and the rest of the system sees the pattern too
    assert Plan.model_validate_json(plan.model_dump_json(by_alias=True)) == plan
    assert estimate_cost(plan, Spending(), 0.5) == 1.0
    assert '"chain" (calls in order, each given the previous reply)' in planner_prompt()
    assert "ChainStep" in plan_schema()["$defs"]
    with pytest.raises(PlanError, match="no agent offers skill 'write'"):
        validate_plan(parse_plan(PLAN), {"research"})


def test_a_removed_pattern_is_an_unknown_pattern(chain: Any) -> None:
    patterns.unregister("chain")
    with pytest.raises(
        PlanError, match="unknown pattern; use one of task, route, parallel, vote, loop, dynamic"
    ):
        parse_plan(PLAN)
    assert "ChainStep" not in plan_schema()["$defs"]
