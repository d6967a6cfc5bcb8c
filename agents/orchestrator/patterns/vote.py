"""``vote``: the same call run several times (or once per named agent); the answer that reaches the
quorum wins, and the dissent is kept."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Literal

import anyio
from pydantic import Field

from podium.agents.orchestrator.errors import DelegationError, PlanError, StepFailed
from podium.agents.orchestrator.events import TraceEvent
from podium.agents.orchestrator.patterns.context import StepContext
from podium.agents.orchestrator.patterns.registry import Pattern
from podium.agents.orchestrator.results import RefError, StepResult, select
from podium.agents.orchestrator.steps import Call, StepBase


class VoteStep(StepBase):
    """Voting: the same call run several times (or once per named agent); the answer at ``key`` that
    reaches the quorum wins."""

    pattern: Literal["vote"] = "vote"
    call: Call
    voters: int = Field(default=3, ge=1, le=9, description="runs of the call (ignored when agents are named)")
    agents: list[str] = Field(default_factory=list, description="one vote per named agent")
    key: str = Field(default="value", description="path of the answer compared between votes")
    quorum: int | None = Field(default=None, ge=1, description="votes the winner needs; default: a majority")
    tie: Literal["fail", "first"] = Field(
        default="fail", description="equal top counts: fail, or the earliest answer"
    )

    def calls(self) -> list[Call]:
        return [self.call]

    @property
    def n(self) -> int:
        return len(self.agents) or self.voters

    @property
    def needed(self) -> int:
        return self.quorum or self.n // 2 + 1


class Vote(Pattern):
    name = "vote"
    step = VoteStep
    summary = "the same call several times, with a quorum"

    def max_calls(self, step: VoteStep) -> int:
        return step.n

    def check(self, step: VoteStep, agents: set[str] | None) -> None:
        if agents is not None:
            for agent in step.agents:
                if agent not in agents:
                    raise PlanError(f"step {step.id!r}: voter agent {agent!r} is not registered")
        if step.needed > step.n:
            raise PlanError(f"step {step.id!r}: a quorum of {step.needed} is more than its {step.n} voters")

    async def run(self, step: VoteStep, ctx: StepContext) -> StepResult:
        voters: list[str | None] = list(step.agents) or [None] * step.voters
        replies: list[StepResult | str] = [""] * len(voters)

        async def one(i: int, agent: str | None) -> None:
            call = step.call.model_copy(update={"agent": agent}) if agent else step.call
            spec = ctx.spec(
                call, ctx.key(f".v{i + 1}"), extra=ctx.extra, text=ctx.instruction, repeatable=True
            )
            try:
                replies[i] = await ctx.delegate(spec, reason=f"voter {i + 1} of {len(voters)}")
            except (DelegationError, StepFailed) as exc:
                replies[i] = exc.message

        async with anyio.create_task_group() as tg:
            for i, agent in enumerate(voters):
                tg.start_soon(one, i, agent)
        ballots = _ballots(step, voters, replies)
        counted = Counter(b["key"] for b in ballots if b["key"] is not None)
        tally = {k: n for k, n in counted.most_common()}
        winner, why = _winner(step, ballots, counted, len(voters))
        dissent = [b for b in ballots if b["key"] is not None and b["key"] != winner]
        await ctx.trace.record(
            TraceEvent.VOTE,
            step=step.id,
            state="decided" if winner is not None else "undecided",
            reason=why
            or f"{counted[winner]} of {len(voters)} votes for {winner} (quorum {step.needed})"
            + (f"; {len(dissent)} voter(s) disagreed" if dissent else ""),
            data={"tally": tally, "ballots": ballots, "quorum": step.needed},
        )
        if winner is None:
            raise StepFailed(f"step {step.id!r}: no decision: {why}")
        first = next(i for i, b in enumerate(ballots) if b["key"] == winner)
        chosen = replies[first]
        assert isinstance(chosen, StepResult)
        output = {
            **chosen.output,
            "votes": ballots,
            "tally": tally,
            "quorum": step.needed,
            "dissent": dissent,
        }
        agents = sorted({b["agent"] for b in ballots if b.get("agent")})
        return StepResult(
            step=step.id,
            status="completed",
            output=output,
            text=chosen.text,
            agent=chosen.agent,
            binding=chosen.binding,
            agents=agents,
        )


def _ballots(
    step: VoteStep, voters: list[str | None], replies: list[StepResult | str]
) -> list[dict[str, Any]]:
    ballots = []
    for i, reply in enumerate(replies):
        if isinstance(reply, StepResult):
            try:
                answer = select(reply.output, step.key.split("."))
            except RefError:
                answer = None
            ballots.append({"voter": i + 1, "agent": reply.agent, "answer": answer, "key": _ballot(answer)})
        else:
            ballots.append({"voter": i + 1, "agent": voters[i], "answer": None, "key": None, "error": reply})
    return ballots


def _winner(
    step: VoteStep, ballots: list[dict[str, Any]], counted: Counter[str], n: int
) -> tuple[str | None, str]:
    """The winning ballot key (None: no decision) and why there is none."""
    top = counted.most_common()
    winner: str | None = None
    why = ""
    if not top:
        why = "no voter answered"
    elif len(top) > 1 and top[0][1] == top[1][1]:
        if step.tie == "first":
            tied = {k for k, c in top if c == top[0][1]}
            winner = next(b["key"] for b in ballots if b["key"] in tied)
            why = f"a tie between {len(tied)} answers: the earliest answer wins (tie rule 'first')"
        else:
            why = f"a tie at {top[0][1]} votes each (tie rule 'fail')"
    else:
        winner = top[0][0]
    if winner is not None and counted[winner] < step.needed:
        why = f"the best answer got {counted[winner]} of {n} votes; the quorum is {step.needed}"
        winner = None
    return winner, why


def _ballot(answer: Any) -> str | None:
    """How an answer is compared with others: numbers to 9 significant digits, text case-folded."""
    if answer is None:
        return None
    if isinstance(answer, bool):
        return str(answer).lower()
    if isinstance(answer, int | float):
        return f"{answer:.9g}"
    if isinstance(answer, str):
        return " ".join(answer.lower().split()) or None
    return json.dumps(answer, sort_keys=True, default=str)


PATTERN = Vote()
