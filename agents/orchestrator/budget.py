"""A request's budget as the orchestrator spends it: delegation hops, model tokens, a deadline, spend.

The budget arrives with the request — in the bus envelope, or over HTTP in the message metadata under
``podium.budget`` (``{"hops": 5, "tokens": 20000, "deadline": <unix s>, "spend": 0.5}``) — and what is
left travels on with every delegation. Each delegation spends one hop, each model call its tokens and
their estimated price. A budget that runs out stops further work with :class:`BudgetExceeded`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from podium.agents.llm.prices import FALLBACK
from podium.agents.orchestrator.errors import BudgetExceeded
from podium.bus.envelope import Budget

# USD per million tokens (input, output), for calls whose engine did not price them.
PRICE_PER_MTOK = FALLBACK


@dataclass
class Spending:
    """What one run may still spend; ``None`` limits are unlimited."""

    hops: int | None = None
    tokens: int | None = None
    deadline: float | None = None
    spend: float | None = None
    used: dict[str, float] = field(default_factory=lambda: {"hops": 0, "tokens": 0, "spend": 0.0})

    @classmethod
    def from_budget(cls, budget: Budget | None, used: dict[str, float] | None = None) -> Spending:
        b = budget or Budget()
        spending = cls(hops=b.hops, tokens=b.tokens, deadline=b.deadline, spend=b.spend)
        if used:
            spending.used.update(used)
        return spending

    @classmethod
    def parse(cls, raw: Any) -> Budget | None:
        """A budget from message metadata; None when absent. Raises ``ValueError`` when malformed."""
        if raw in (None, "", {}):
            return None
        if not isinstance(raw, dict):
            raise ValueError('podium.budget must be an object like {"hops": 5, "tokens": 20000}')
        return Budget.model_validate({k: v for k, v in raw.items() if v is not None})

    def remaining(self) -> Budget:
        """What is left, as the budget passed on with a delegation."""
        return Budget(
            hops=None if self.hops is None else max(0, self.hops - int(self.used["hops"])),
            tokens=None if self.tokens is None else max(0, self.tokens - int(self.used["tokens"])),
            deadline=self.deadline,
            spend=None if self.spend is None else max(0.0, round(self.spend - self.used["spend"], 6)),
        )

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time()

    def check(self) -> None:
        """Raise ``BudgetExceeded`` when any limit is already reached."""
        if self.deadline is not None and time.time() >= self.deadline:
            raise BudgetExceeded("the request's deadline has passed")
        if self.tokens is not None and self.used["tokens"] >= self.tokens:
            raise BudgetExceeded(f"the token budget of {self.tokens} is used up")
        if self.spend is not None and self.used["spend"] >= self.spend:
            raise BudgetExceeded(f"the spend budget of ${self.spend:g} is used up")

    def take_hop(self) -> None:
        """Spend one delegation hop. Raises ``BudgetExceeded`` when none is left."""
        self.check()
        if self.hops is not None and self.used["hops"] >= self.hops:
            raise BudgetExceeded(
                f"the hop budget of {self.hops} delegation(s) is used up; another step needs one more"
            )
        self.used["hops"] += 1

    def charge(
        self, input_tokens: int, output_tokens: int, cost: float | None = None, who: str = "orchestrator"
    ) -> float:
        """Record a model call's tokens and their price in USD: ``cost`` as the engine priced it
        (:mod:`agents.llm.prices`), else estimated at :data:`PRICE_PER_MTOK`; ``who`` spent it (the
        planner, an agent, the synthesis). Checked before the next call. Returns the cost charged."""
        self.used["tokens"] += input_tokens + output_tokens
        if cost is None:
            price_in, price_out = PRICE_PER_MTOK
            cost = (input_tokens * price_in + output_tokens * price_out) / 1e6
        self.used["spend"] = round(self.used["spend"] + cost, 8)
        # kept flat in ``used`` (checkpointed with it), so a resumed run still knows who spent what
        for key, value in (
            (f"{_IN}{who}", input_tokens),
            (f"{_OUT}{who}", output_tokens),
            (f"{_USD}{who}", cost),
        ):
            self.used[key] = round(self.used.get(key, 0) + value, 8)
        return cost

    def by_whom(self) -> dict[str, dict[str, float]]:
        """What each spender used: ``{"planner": {"inputTokens", "outputTokens", "spendUsd"}, ...}``."""
        out: dict[str, dict[str, float]] = {}
        for key, value in self.used.items():
            for prefix, name in ((_IN, "inputTokens"), (_OUT, "outputTokens"), (_USD, "spendUsd")):
                if key.startswith(prefix):
                    out.setdefault(key[len(prefix) :], {})[name] = int(value) if name != "spendUsd" else value
        return out

    def report(self) -> dict[str, Any]:
        """The task's usage for its answer: totals and who spent them."""
        by = self.by_whom()
        return {
            "inputTokens": int(sum(v.get("inputTokens", 0) for v in by.values())),
            "outputTokens": int(sum(v.get("outputTokens", 0) for v in by.values())),
            "tokens": int(self.used["tokens"]),
            "spendUsd": round(self.used["spend"], 6),
            "hops": int(self.used["hops"]),
            "by": by,
        }


def spend_line(input_tokens: int, output_tokens: int, cost: float) -> str:
    """``"1,200 in + 80 out tokens, $0.0048"``: how the trace shows a call's usage."""
    return f"{input_tokens:,} in + {output_tokens:,} out tokens, ${cost:.4f}"


def spend_total(usage: dict[str, Any]) -> str:
    """A task's spend (:meth:`Spending.report`) in one trace line: totals, then each spender's share."""
    parts = [f"{who} ${v.get('spendUsd', 0):.4f}" for who, v in usage["by"].items()]
    total = spend_line(usage["inputTokens"], usage["outputTokens"], usage["spendUsd"])
    return f"{total}" + (f" ({', '.join(parts)})" if parts else " (no model calls)")


_IN, _OUT, _USD = "in:", "out:", "usd:"
