"""``calc``: exact arithmetic, descriptive statistics and time-value-of-money, as an MCP server.

Every result carries the steps taken, so an agent can show its working. Expressions are parsed by
:mod:`mcp_servers.arith` (never ``eval``); money is computed in ``Decimal`` and rounded to cents only in
the returned amounts.
"""

from __future__ import annotations

import decimal
import math
import statistics as pystats
from collections import Counter
from decimal import Decimal
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from podium.mcp_servers import arith
from podium.mcp_servers.errors import ExpressionError
from podium.mcp_servers.tooling import default_server, tool

MAX_VALUES = 10_000
MAX_PERCENTILES = 101
CENTS = Decimal("0.01")

MAX_ABS = 1e100  # keeps sums, squares and interpolations of the data far from float overflow
Finite = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_ABS, le=MAX_ABS)]


class Evaluation(BaseModel):
    expression: str
    result: str = Field(
        description="the result in decimal: every digit of a whole number, else 50 significant digits"
    )
    value: float = Field(description="the result as a floating-point number")
    exact: bool = Field(
        True, description="false when the result was rounded (irrational or repeating, e.g. sqrt(2), 1/3)"
    )
    steps: list[str] = Field(description="each operation performed, innermost first")


class Statistics(BaseModel):
    count: int
    mean: float
    median: float
    stdev: float | None = Field(description="sample standard deviation (n - 1); null for a single value")
    min: float
    max: float
    range: float = Field(description="max - min")
    mode: list[float] = Field(
        description="the most frequent values (all of them on a tie); empty if none repeats"
    )
    percentiles: dict[str, float] = Field(description="requested percentile -> value (linear interpolation)")
    steps: list[str]


class Growth(BaseModel):
    final_amount: float = Field(description="principal plus compound growth, rounded to cents")
    growth: float = Field(description="final_amount - principal, rounded to cents")
    steps: list[str]


class LoanPayment(BaseModel):
    payment: float = Field(description="the level payment per period, rounded to cents")
    total_paid: float = Field(description="payment x number of payments, rounded to cents")
    total_interest: float = Field(description="total_paid - principal, rounded to cents")
    steps: list[str]


def _num(value: Decimal, places: int = 10) -> str:
    return arith.fmt(round(value, places))


def _given(value: float) -> Decimal:
    """A number as the caller wrote it (``12345.67``), not its binary float expansion."""
    return Decimal(repr(value))


def _cents(value: Decimal) -> float:
    return float(value.quantize(CENTS, rounding=decimal.ROUND_HALF_EVEN)) + 0.0  # + 0.0: never -0.0


def percentile(ordered: list[float], p: float) -> tuple[float, str]:
    """The ``p``-th percentile of sorted data by linear interpolation between closest ranks (the default of
    numpy and spreadsheets), with a line explaining it."""
    rank = p / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    frac = rank - low
    value = ordered[low] + (ordered[high] - ordered[low]) * frac
    why = (
        f"p{p:g}: rank {p:g}/100 x ({len(ordered)} - 1) = {rank:g}; "
        f"{ordered[low]:g} + ({ordered[high]:g} - {ordered[low]:g}) x {frac:g} = {value:g}"
    )
    return value, why


def create_server() -> MCPServer:
    server: MCPServer = MCPServer(
        "calc",
        title="Podium calculator",
        instructions="Exact arithmetic, statistics and loan/growth maths; every result lists its steps.",
    )

    @tool(server, read_only=True)
    def evaluate(
        expression: Annotated[
            str,
            Field(
                min_length=1,
                max_length=arith.MAX_LENGTH,
                description="e.g. '(1200 - 15%) / 12', 'sqrt(2) * pi', '2**10 // 3'",
            ),
        ],
    ) -> Evaluation:
        """Evaluate an arithmetic expression exactly: whole numbers to every digit, decimals (money,
        percentages) exactly, anything else to 50 significant digits (then ``exact`` is false).

        Operators: + - * / // % ** (^ is an alias for **), parentheses, unary minus.
        Percent: '15%' is 0.15; 'a + p%' / 'a - p%' add or subtract p percent of a ('200 + 10%' = 220);
        '%' between two numbers is the remainder ('17 % 5' = 2).
        Functions: round(x[, places]), min, max, sqrt, abs, floor, ceil, log(x[, base]), ln, log10, exp.
        Constants: pi, e. Results must stay within 1e300; nothing but arithmetic is ever executed."""
        try:
            result = arith.evaluate(expression)
        except ExpressionError as exc:
            raise ToolError(f"cannot evaluate expression: {exc}") from exc
        return Evaluation(
            expression=expression,
            result=arith.fmt(result.value),
            value=float(result.value),
            exact=result.exact,
            steps=result.steps,
        )

    @tool(server, read_only=True)
    def statistics(
        values: Annotated[
            list[Finite],
            Field(
                min_length=1,
                max_length=MAX_VALUES,
                description="the data: 1-10000 numbers, each within ±1e100",
            ),
        ],
        percentiles: Annotated[
            list[Annotated[float, Field(ge=0, le=100)]],
            Field(
                max_length=MAX_PERCENTILES,
                description="percentiles to compute, each 0-100, e.g. [25, 50, 90]",
            ),
        ] = [],  # noqa: B006 - pydantic copies defaults; the schema shows []
    ) -> Statistics:
        """Descriptive statistics of a list of numbers: count, mean, median, sample standard deviation,
        min, max, range, mode and any requested percentiles (linear interpolation, as numpy and spreadsheets do)."""
        ordered = sorted(values)
        n = len(ordered)
        total = math.fsum(ordered)
        mean = total / n
        if not math.isfinite(mean):
            raise ToolError("values are too large: their sum overflows")
        median = pystats.median(ordered)
        steps = [f"sorted {n} values: min {ordered[0]:g}, max {ordered[-1]:g}"]
        steps.append(f"mean = sum / n = {total:g} / {n} = {mean:g}")
        steps.append(f"median = middle of the sorted values = {median:g}")
        spread = ordered[-1] - ordered[0]
        steps.append(f"range = max - min = {ordered[-1]:g} - {ordered[0]:g} = {spread:g}")
        counts = Counter(ordered)
        top = max(counts.values())
        modes = [v for v, c in counts.items() if c == top] if top > 1 else []
        steps.append(
            f"mode = the most frequent value{'s' if len(modes) > 1 else ''}: "
            + (f"{', '.join(f'{v:g}' for v in modes)} ({top} times each)" if len(modes) > 1 else
               f"{modes[0]:g} ({top} times)" if modes else "none, every value appears once")
        )  # fmt: skip
        stdev = None
        if n > 1:
            stdev = pystats.stdev(ordered, xbar=mean)
            steps.append(f"stdev = sqrt(sum((x - mean)^2) / (n - 1)) = {stdev:g}")
        else:
            steps.append("stdev: undefined for a single value")
        result: dict[str, float] = {}
        for p in percentiles:
            result[f"{p:g}"], why = percentile(ordered, p)
            steps.append(why)
        return Statistics(
            count=n,
            mean=mean,
            median=median,
            stdev=stdev,
            min=ordered[0],
            max=ordered[-1],
            range=spread,
            mode=modes,
            percentiles=result,
            steps=steps,
        )

    @tool(server, read_only=True)
    def compound_growth(
        principal: Annotated[float, Field(gt=0, le=1e15, description="starting amount")],
        rate_percent: Annotated[float, Field(gt=-100, le=1000, description="yearly rate in percent, e.g. 5")],
        years: Annotated[float, Field(gt=0, le=1000, description="duration in years (fractions allowed)")],
        periods_per_year: Annotated[
            int, Field(ge=1, le=8760, description="compounding periods per year: 1 yearly, 12 monthly")
        ] = 1,
    ) -> Growth:
        """Compound growth of a principal: final = principal x (1 + rate/periods)^(periods x years).
        Returns the final amount and the growth, rounded to cents, with the steps."""
        with decimal.localcontext(arith.CONTEXT):
            try:
                p, n = _given(principal), Decimal(periods_per_year)
                rate = _given(rate_percent) / 100 / n
                count = n * _given(years)
                factor = (1 + rate) ** count
                final = p * factor
            except (decimal.Overflow, decimal.InvalidOperation) as exc:
                raise ToolError("compound_growth: the result is too large to compute") from exc
            steps = [
                f"rate per period = {_num(_given(rate_percent))}% / {periods_per_year} = {_num(rate * 100)}%",
                f"periods = {periods_per_year} x {_num(_given(years))} = {_num(count)}",
                f"growth factor = (1 + {_num(rate)})^{_num(count)} = {_num(factor)}",
                f"final amount = {_num(p)} x {_num(factor)} = {_num(final, 2)}",
                f"growth = {_num(final, 2)} - {_num(p)} = {_num(final.quantize(CENTS) - p, 2)}",
            ]
            return Growth(final_amount=_cents(final), growth=_cents(final.quantize(CENTS) - p), steps=steps)

    @tool(server, read_only=True)
    def loan_payment(
        principal: Annotated[float, Field(gt=0, le=1e15, description="amount borrowed")],
        annual_rate_percent: Annotated[
            float, Field(ge=0, le=1000, description="yearly interest rate in percent")
        ],
        years: Annotated[float, Field(gt=0, le=100, description="term in years")],
        periods_per_year: Annotated[
            int, Field(ge=1, le=365, description="payments per year: 12 monthly")
        ] = 12,
    ) -> LoanPayment:
        """Level payment of an amortising loan: payment = P x r / (1 - (1 + r)^-N), where r is the rate
        per period and N the number of payments (years x periods_per_year, which must be whole).
        Returns payment, total paid and total interest, rounded to cents, with the steps."""
        count = years * periods_per_year
        if abs(count - round(count)) > 1e-9:
            raise ToolError(
                f"years x periods_per_year = {count:g} payments: it must be a whole number (check years)"
            )
        with decimal.localcontext(arith.CONTEXT):
            p, payments = _given(principal), round(count)
            rate = _given(annual_rate_percent) / 100 / periods_per_year
            steps = [
                f"rate per period r = {_num(_given(annual_rate_percent))}% / {periods_per_year} = {_num(rate)}",
                f"number of payments N = {_num(_given(years))} x {periods_per_year} = {payments}",
            ]
            # Each step shows the values it computes with: the totals come from the exact payment, so the
            # payment is shown exactly (then rounded) and "payment x N" adds up to the total shown.
            if rate.is_zero():
                payment = p / payments
                exact = _num(payment)
                steps.append(f"no interest: payment = {_num(p)} / {payments} = {exact} ≈ {_num(payment, 2)}")
            else:
                discount = (1 + rate) ** -payments
                payment = p * rate / (1 - discount)
                exact = _num(payment)
                steps.append(f"(1 + r)^-N = {_num(discount)}")
                steps.append(
                    f"payment = {_num(p)} x {_num(rate)} / (1 - {_num(discount)}) = {exact} ≈ {_num(payment, 2)}"
                )
            total = (payment * payments).quantize(CENTS, rounding=decimal.ROUND_HALF_EVEN)
            steps.append(f"total paid = {exact} x {payments} = {_num(total, 2)}")
            steps.append(f"total interest = {_num(total, 2)} - {_num(p)} = {_num(total - p, 2)}")
            return LoanPayment(
                payment=_cents(payment),
                total_paid=_cents(total),
                total_interest=_cents(total - p),
                steps=steps,
            )

    return server


__getattr__ = default_server(create_server)
