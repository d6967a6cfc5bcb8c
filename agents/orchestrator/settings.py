"""The orchestrator's settings: the ``orchestrator`` section of ``agents/config/orchestrator.json``.

Every field has a default, so the section may be left out. A bad value is rejected when the agent
starts, naming the field (``orchestrator.approval.default: ...``).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from podium.agents.host.config import AgentConfigError

# delegations in flight per task by default: a plan's independent steps all at once (up to 64)
MAX_PARALLEL = 64


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class BreakerSettings(_Section):
    threshold: int = Field(default=3, ge=1, description="consecutive failures that open an agent's breaker")
    cooldown_s: float = Field(default=10.0, gt=0, description="open time before one probe call (half-open)")


class ApprovalSettings(_Section):
    tags: list[str] = Field(
        default_factory=lambda: ["approval", "needs-approval"],
        description="skill tags whose steps wait for the caller's approval",
    )
    cost_limit_usd: float | None = Field(
        default=None, ge=0, description="plans estimated above this need approval"
    )
    estimated_call_usd: float = Field(default=0.01, ge=0, description="the cost estimate of one delegation")
    timeout_s: float = Field(default=600.0, gt=0, description="how long an approval may take")
    default: Literal["deny", "approve"] = Field(default="deny", description="the answer when it times out")


class OrchestratorSettings(_Section):
    default_agent: str = Field(default="researcher", description="the agent for requests no skill fits")
    timeout_s: float = Field(default=120.0, gt=0, le=3600, description="per delegation, unless the step says")
    cold_start_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="extra time a delegation allows an agent with no replica running (scaled to zero) to start one",
    )
    retries: int = Field(default=2, ge=0, le=10, description="retries of a transient failure per agent")
    max_parallel: int = Field(
        default=MAX_PARALLEL, ge=1, le=256, description="delegations in flight per task"
    )
    max_rounds: int = Field(default=3, ge=1, le=10, description="write/review rounds of the offline planner")
    lease_s: float = Field(default=15.0, gt=1, description="a crashed replica's runs are resumed after this")
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    approval: ApprovalSettings = Field(default_factory=ApprovalSettings)


def load_settings(raw: dict[str, Any] | None, source: str) -> OrchestratorSettings:
    """Settings from the config section, with ``PODIUM_DEFAULT_AGENT`` and ``PODIUM_COLD_START_S`` over the file.

    Raises ``AgentConfigError`` naming the field.
    """
    data = dict(raw or {})
    if os.environ.get("PODIUM_DEFAULT_AGENT"):
        data["defaultAgent"] = os.environ["PODIUM_DEFAULT_AGENT"]
    if os.environ.get("PODIUM_COLD_START_S"):
        data["coldStartS"] = os.environ["PODIUM_COLD_START_S"]
    try:
        return OrchestratorSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"orchestrator.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise AgentConfigError(f"{source}: {problems}") from exc
