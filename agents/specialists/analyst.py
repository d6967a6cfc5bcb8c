"""The analyst: computes numbers exactly with the calc server and shows the tool's steps.

Offline it finds the computation in the task (:mod:`agents.specialists.quantities`: arithmetic,
percentages, prices after a discount or a rise, tax and tips, what percentage one number is of another,
percentage change, ratios, averages and other statistics, compound growth, loan payments; numbers in
digits or words), calls the matching calc tool and reports its figures and steps. A task that talks
numbers it cannot read is rejected saying so plainly, with the phrasings it understands; one with
nothing to compute is rejected naming the agent that would fit. With an engine, the model runs a tool loop over the calc tools; the figures reported
are those of the last successful calc call, never numbers the model wrote itself.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from a2a.server.agent_execution import AgentExecutor
from pydantic.alias_generators import to_camel

from podium.agents.host.context import AgentContext
from podium.agents.llm import run_tool_loop
from podium.agents.specialists.base import Job, Rejected, Specialist
from podium.agents.specialists.models import AnalysisInput, AnalysisOutput
from podium.agents.text.quantities import Computation, normalise
from podium.agents.text.routing import misrouted
from podium.agents.text.units import quantities
from podium.agents.text.wording import word_sentence
from podium.agents.text.words import shorten
from podium.mcp_servers import arith

SYSTEM = """You are the analyst of a multi-agent team. Compute every number with the calc tools \
(calc__evaluate, calc__statistics, calc__compound_growth, calc__loan_payment); never do arithmetic \
yourself. Answer in one or two sentences giving the final figures, and say which tool produced them. \
If the task holds nothing to compute, reply with exactly: NOTHING TO COMPUTE"""

HEADLINE = {
    "evaluate": "value",
    "loan_payment": "payment",
    "compound_growth": "final_amount",
}
_NUMBERISH = re.compile(
    r"\d|\b(calculate|compute|how much|how many|average|mean|median|sum|total|percent)\b", re.I
)
# Words of a calculation: a task with these that the analyst cannot read is its own, not another agent's.
_MATHISH = re.compile(
    r"%|\b(percent\w*|calculate|compute|how much|how many|average|mean|median|sum|total|ratio|discount|off|"
    r"tax|tip|interest|loan|mortgage|times|plus|minus|divided|multiplied|increase|decrease)\b",
    re.I,
)
UNDERSTOOD = (
    "arithmetic (12 * 7, twelve times seven), percentages (15% of 240, a $1200 laptop 15% off, 8% tax on $45, "
    "what percentage of 200 is 50, the change from 80 to 100, a 25% markup then a 20% discount), ratios, "
    "statistics (the average, median, mode or range of 3, 5 and 10), speed, distance and time (300 km in 2.5 "
    "hours), unit prices and rates (3 kg for $7.50, per kg; 24 pages a minute for 15 minutes), proportions "
    "(250 g for 4 people, for 10 people; 3 workers take 12 days, 4 workers), unit conversions (5 kg to pounds, "
    "100 °F to °C), simple and compound interest, and loan payments"
)


class Analyst(Specialist):
    name = "analyst"
    skill = "calculate"
    input_model = AnalysisInput
    engine_tools = ("calc__",)

    async def offline(self, job: Job) -> AnalysisOutput:
        computation = job.route.computation
        if job.route.kind != "compute" or computation is None:
            raise self.nothing_to_compute(job)
        tool = f"calc__{computation.tool}"
        result = await job.tools.call(tool, computation.arguments)
        if result.is_error or not isinstance(result.data, dict):
            raise Rejected(f"the calculator could not compute {computation.label}: {result.text}")
        return self.report(job, computation, tool, result.data)

    def nothing_to_compute(self, job: Job) -> Rejected:
        norm = normalise(job.question)
        if job.route.kind == "compute" or (job.route.kind == "research" and _MATHISH.search(norm)):
            return Rejected(
                f"I could not work out what to compute in “{shorten(job.question, 120)}”: {understood(norm)}. "
                f"I can work out {UNDERSTOOD}; rephrase it like one of these, with its numbers"
            )
        if job.route.kind in ("research", "compute"):
            return Rejected(
                "there is nothing to compute in this task: no arithmetic, percentage, statistics, growth "
                "or loan with its numbers",
                "researcher" if job.route.kind == "research" and "?" in job.question else None,
            )
        return Rejected(misrouted(job.route, self.name), job.route.agent)

    def report(
        self, job: Job, computation: Computation, tool: str, data: dict[str, Any], engine: str = "offline"
    ) -> AnalysisOutput:
        values = {
            k: float(v) for k, v in data.items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
        if computation.tool == "statistics":
            wanted = computation.wanted or ["mean"]
            modes = [float(m) for m in data.get("mode") or []]
            if modes:
                values["mode"] = modes[0]
            value = values.get(wanted[0])
            figures = ", ".join(
                f"mode = {_modes(modes)}" if w == "mode" else f"{w} = {_fmt(values.get(w))}" for w in wanted
            )
            sentence = f"For {', '.join(_fmt(v) for v in computation.arguments['values'])}: {figures}."
        else:
            value = values.get(HEADLINE.get(computation.tool, "value"))
            sentence = self.sentence(
                computation, value, values, _shown(computation, data), [str(s) for s in data.get("steps", [])]
            )
        return self.output(
            job,
            AnalysisOutput,
            result=sentence,
            confidence=1.0 if engine == "offline" else 0.9,
            engine=engine,
            operation=computation.operation,
            tool=tool,
            arguments=computation.arguments,
            value=value,
            # the tool's figures under camelCase names, like every key Podium writes (total_paid -> totalPaid)
            values={to_camel(k): v for k, v in values.items()},
            steps=[str(s) for s in data.get("steps", [])],
        )

    def sentence(
        self,
        c: Computation,
        value: float | None,
        values: dict[str, float],
        shown: str = "",
        steps: list[str] | None = None,
    ) -> str:
        shown = shown or _fmt(value)
        if c.word:
            return word_sentence(c, shown, steps or [])
        if c.operation == "loan":
            per = {12: "monthly", 4: "quarterly", 52: "weekly", 1: "yearly"}.get(
                c.arguments["periods_per_year"], ""
            )
            return (
                f"The {per} {c.label} is {_money(value)}; total paid {_money(values.get('total_paid'))}, "
                f"of which interest {_money(values.get('total_interest'))}."
            ).replace("  ", " ")
        if c.operation == "growth":
            return f"The {c.label} gives {_money(value)} (growth {_money(values.get('growth'))})."
        if c.operation == "percent_change":
            return f"The {c.label} is {shown}%."
        if c.operation == "what_percent":
            return f"{c.label[:1].upper()}{c.label[1:]} is {shown}%."
        if c.operation == "ratio":
            return f"The {c.label} is {shown}{_simplest(c.arguments['expression'])}."
        if c.operation in ("discount", "increase", "percentage"):
            return f"{c.label[:1].upper()}{c.label[1:]} is {shown}."
        return f"{c.label} {'≈' if shown.startswith('≈') else '='} {shown.removeprefix('≈ ')}"

    async def with_engine(self, job: Job) -> AnalysisOutput:
        if job.route.kind != "compute" and not (
            job.route.kind == "research" and _NUMBERISH.search(job.question)
        ):
            raise self.nothing_to_compute(job)
        context = "".join(f"\n\nShared note {k!r}:\n{v}" for k, v in job.board.items())
        loop = job.spent(
            await run_tool_loop(
                self.engine,
                system=SYSTEM,
                prompt=job.question + context,
                tools=job.tools.only(self.engine_tools),
                token_budget=job.token_budget,
            )
        )
        done = [c for c in job.tools.calls if c.name.startswith("calc__") and not c.result.is_error]
        if "NOTHING TO COMPUTE" in loop.text or not done:
            raise self.nothing_to_compute(job)
        last = done[-1]
        tool = last.name.removeprefix("calc__")
        operation = {"loan_payment": "loan", "compound_growth": "growth"}.get(tool, tool)
        computation = job.route.computation or Computation(operation, tool, last.arguments, tool)
        if computation.tool != tool:
            computation = Computation(operation, tool, last.arguments, tool)
        data = last.result.data if isinstance(last.result.data, dict) else {}
        output = self.report(job, computation, last.name, data, engine=loop.model)
        output.result = loop.text.strip() or output.result
        output.arguments = last.arguments
        return output

    def render(self, output: Any) -> str:
        steps = "\n".join(f"  {i}. {s}" for i, s in enumerate(output.steps, 1))
        return f"{output.result}\n\nSteps ({output.tool}):\n{steps}"


def understood(norm: str) -> str:
    """What the analyst read in a task it could not compute: its quantities and other numbers."""
    found = quantities(norm)
    taken = [q.span for q in found]
    numbers = [
        m.group()
        for m in re.finditer(r"(?<![\w.])-?\d+(?:\.\d+)?%?", norm)
        if not any(a <= m.start() < b for a, b in taken)
    ]
    read = [str(q) for q in found] + numbers
    if not read:
        return "it gives no numbers to compute with"
    return f"I read {', '.join(read)}, but not which calculation they are for"


def _shown(c: Computation, data: dict[str, Any]) -> str:
    """The calculator's result as the answer writes it: an exact one in full, digits grouped
    (1,267,650,600,228,229,401,496,703,205,376); a rounded one (1/3, sqrt(2)) to ``c.digits`` significant
    digits after "≈"; empty when the tool gave no decimal result."""
    if c.tool != "evaluate" or not isinstance(data.get("result"), str):
        return ""
    try:
        value = Decimal(data["result"])
    except InvalidOperation:
        return ""
    if data.get("exact", True):
        return arith.grouped(arith.fmt(value))
    return "≈ " + arith.grouped(arith.rounded(value, c.digits))


def _modes(modes: list[float]) -> str:
    return " and ".join(_fmt(m) for m in modes) if modes else "none (no value repeats)"


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.10g}" if abs(value) < 1e15 else f"{value:g}"


def _simplest(expression: str) -> str:
    """`` (3:4)`` for the ratio ``6 / 8`` of two whole numbers; empty otherwise."""
    a, _, b = expression.partition(" / ")
    try:
        x, y = Decimal(a), Decimal(b)
    except InvalidOperation:
        return ""
    if x != x.to_integral_value() or y != y.to_integral_value() or not x or not y:
        return ""
    d = math.gcd(int(x), int(y))
    return f" ({int(x) // d}:{int(y) // d})"


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def build(ctx: AgentContext) -> AgentExecutor:
    return Analyst(ctx)
