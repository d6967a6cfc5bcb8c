"""How the orchestrator plans: the offline planner, the model planner, and the catalog they plan over.

Both planners implement :class:`Planner`: they turn a request into a validated plan, and a dynamic step's
items into its workers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from podium.agents.orchestrator.budget import Spending
    from podium.agents.orchestrator.catalog import Catalog
    from podium.agents.orchestrator.patterns.context import Recorder
    from podium.agents.orchestrator.plan import Call, Plan


class Planner(Protocol):
    """Plans a request over the skills in a catalog. ``name`` says who planned (the trace, spans)."""

    name: str

    async def plan(
        self,
        text: str,
        data: dict[str, Any],
        catalog: Catalog,
        *,
        spending: Spending | None = None,
        trace: Recorder | None = None,
    ) -> Plan:
        """A validated plan for ``text`` (and the data sent with it). Raises ``PlanError`` when none can
        be built from the agents alive."""
        ...

    async def expand(self, step: Any, items: list[Any], request: str) -> list[Call]:
        """A dynamic step's workers: one call per item."""
        ...


__all__ = ["Planner"]
