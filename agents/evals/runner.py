"""Running an evaluation set against an orchestrator: each case asked over A2A, several at a time, each
within its own timeout, scored as soon as it finishes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import httpx
from a2a.client.errors import A2AClientError
from a2a.types.a2a_pb2 import Task, TaskState
from a2a.utils.errors import A2AError

from podium.agents.client import ask, open_client, task_text
from podium.agents.evals.cases import Case, Outcome, score

__all__ = ["by_tag", "run_cases"]


def _state(task: Task) -> str:
    return TaskState.Name(task.status.state).removeprefix("TASK_STATE_").lower()


def _status_text(task: Task) -> str:
    if not task.status.HasField("message"):
        return ""
    return " ".join(p.text for p in task.status.message.parts if p.HasField("text"))


async def run_cases(
    url: str,
    cases: Sequence[Case],
    *,
    concurrency: int = 4,
    timeout_s: float = 120.0,
    token: str | None = None,
    on_outcome: Callable[[Outcome], Any] | None = None,
) -> list[Outcome]:
    """Ask every case of ``cases`` at the orchestrator at ``url`` and score its answer; outcomes in the
    order of ``cases``. A case that takes longer than ``timeout_s`` fails saying so. Raises what
    ``open_client`` raises when ``url`` serves no agent card."""
    outcomes: list[Outcome | None] = [None] * len(cases)
    limiter = anyio.CapacityLimiter(max(1, concurrency))
    async with open_client(url, token=token, timeout_s=timeout_s + 5) as client:

        async def one(index: int, case: Case) -> None:
            async with limiter:
                started = time.monotonic()
                error = ""
                with anyio.move_on_after(timeout_s) as scope:
                    try:
                        task = await ask(client, case.question)
                    except (A2AError, A2AClientError, httpx.HTTPError) as exc:
                        error = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
                seconds = time.monotonic() - started
                if error:
                    outcome = Outcome(case, False, f"the call failed ({error})", seconds, "error")
                elif scope.cancelled_caught:
                    outcome = Outcome(case, False, f"no answer within {timeout_s:g}s", seconds, "timeout")
                else:
                    state = _state(task)
                    text = (
                        task_text(task) if state == "completed" else (_status_text(task) or task_text(task))
                    )
                    passed, why = score(case, state, text)
                    outcome = Outcome(case, passed, why, seconds, state, text)
            outcomes[index] = outcome
            if on_outcome is not None:
                on_outcome(outcome)

        async with anyio.create_task_group() as group:
            for index, case in enumerate(cases):
                group.start_soon(one, index, case)
    return [o for o in outcomes if o is not None]


def by_tag(outcomes: Sequence[Outcome]) -> dict[str, dict[str, int]]:
    """``{tag: {"passed": n, "total": m}}`` over ``outcomes`` (a case without tags counts as ``untagged``)."""
    totals: dict[str, dict[str, int]] = {}
    for outcome in outcomes:
        for tag in outcome.case.tags or ["untagged"]:
            entry = totals.setdefault(tag, {"passed": 0, "total": 0})
            entry["total"] += 1
            entry["passed"] += int(outcome.passed)
    return dict(sorted(totals.items()))
