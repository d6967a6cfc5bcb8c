"""The calc server in-memory: each tool's answers and steps, its schemas, and bad input as tool errors."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp import Client

from podium.mcp_servers import calc

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[Client]:
    async with Client(calc.create_server()) as c:
        yield c


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def error(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error and result.structured_content is None
    return result.content[0].text


async def test_every_tool_has_input_and_output_schemas(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    expected = {
        "evaluate": ({"expression"}, {"expression", "result", "value", "exact", "steps"}),
        "statistics": (
            {"values", "percentiles"},
            {"count", "mean", "median", "stdev", "min", "max", "range", "mode", "percentiles", "steps"},
        ),
        "compound_growth": ({"principal", "rate_percent", "years", "periods_per_year"}, {"final_amount", "growth", "steps"}),
        "loan_payment": (
            {"principal", "annual_rate_percent", "years", "periods_per_year"},
            {"payment", "total_paid", "total_interest", "steps"},
        ),
    }  # fmt: skip
    assert set(tools) == set(expected)
    for name, (inputs, outputs) in expected.items():
        assert set(tools[name].input_schema["properties"]) == inputs
        assert set(tools[name].output_schema["properties"]) == outputs
        assert tools[name].description and "\n    " not in tools[name].description


async def test_evaluate(client: Client) -> None:
    out = await ok(client, "evaluate", expression="(1200 - 15%) / 12")
    assert out == {
        "expression": "(1200 - 15%) / 12",
        "result": "85",
        "value": 85.0,
        "exact": True,
        "steps": ["1200 - 15% (of 1200 = 180) = 1020", "1020 / 12 = 85"],
    }
    assert (await ok(client, "evaluate", expression="1/3"))["result"] == "0." + "3" * 50


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('true')", "().__class__", "lambda: 0", "open('x')", "9**9**9", "x" * 5, "1/0"],
)
async def test_evaluate_never_executes_anything_but_arithmetic(client: Client, expression: str) -> None:
    assert "cannot evaluate expression" in await error(client, "evaluate", expression=expression)


async def test_statistics(client: Client) -> None:
    out = await ok(client, "statistics", values=[4, 1, 10, 3, 2], percentiles=[50, 90, 0, 100])
    assert out["count"] == 5 and out["mean"] == 4 and out["median"] == 3
    assert out["min"] == 1 and out["max"] == 10
    assert out["stdev"] == pytest.approx(3.5355339059)
    assert out["percentiles"] == {"50": 3, "90": pytest.approx(7.6), "0": 1, "100": 10}
    assert any(step.startswith("p90: rank") for step in out["steps"])
    single = await ok(client, "statistics", values=[7.5])
    assert single["stdev"] is None and single["percentiles"] == {}


async def test_statistics_range_and_mode(client: Client) -> None:
    out = await ok(client, "statistics", values=[2, 3, 3, 5, 7, 3, 2])
    assert out["range"] == 5 and out["mode"] == [3]
    assert (
        "range = max - min = 7 - 2 = 5" in out["steps"]
        and "mode = the most frequent value: 3 (3 times)" in out["steps"]
    )
    tie = await ok(client, "statistics", values=[1, 1, 2, 2, 9])
    assert tie["mode"] == [1, 2]
    assert (await ok(client, "statistics", values=[1, 2, 3]))["mode"] == []


async def test_compound_growth(client: Client) -> None:
    out = await ok(client, "compound_growth", principal=1000, rate_percent=5, years=10, periods_per_year=12)
    assert out["final_amount"] == 1647.01 and out["growth"] == 647.01
    assert "periods = 12 x 10 = 120" in out["steps"]
    yearly = await ok(client, "compound_growth", principal=100, rate_percent=10, years=2)
    assert yearly["final_amount"] == 121.0


async def test_loan_payment(client: Client) -> None:
    out = await ok(client, "loan_payment", principal=200_000, annual_rate_percent=6, years=30)
    assert out["payment"] == 1199.10
    assert out["total_paid"] == pytest.approx(431_676.38)
    assert out["total_interest"] == pytest.approx(231_676.38)
    free = await ok(client, "loan_payment", principal=1200, annual_rate_percent=0, years=1)
    assert free["payment"] == 100 and free["total_interest"] == 0
    assert "whole number" in await error(
        client, "loan_payment", principal=1000, annual_rate_percent=5, years=1.01
    )


@pytest.mark.parametrize(
    ("tool", "arguments", "argument"),
    [
        ("evaluate", {}, "expression"),
        ("evaluate", {"expression": 12}, "expression"),
        ("evaluate", {"expression": "1+" * 600 + "1"}, "expression"),
        ("statistics", {}, "values"),
        ("statistics", {"values": []}, "values"),
        ("statistics", {"values": "1,2,3"}, "values"),
        ("statistics", {"values": [1, "two"]}, "values.1"),
        ("statistics", {"values": [0.5] * 10_001}, "values"),
        ("statistics", {"values": [1, 1e200]}, "values.1"),
        ("statistics", {"values": [1, 2], "percentiles": [101]}, "percentiles.0"),
        ("compound_growth", {"principal": 100, "rate_percent": 5}, "years"),
        ("compound_growth", {"principal": -1, "rate_percent": 5, "years": 1}, "principal"),
        (
            "compound_growth",
            {"principal": 1, "rate_percent": 5, "years": 1, "periods_per_year": 0},
            "periods_per_year",
        ),
        ("loan_payment", {"principal": "lots", "annual_rate_percent": 5, "years": 1}, "principal"),
        ("loan_payment", {"principal": 100, "annual_rate_percent": -5, "years": 1}, "annual_rate_percent"),
    ],
)
async def test_bad_arguments_are_tool_errors_naming_the_argument(
    client: Client, tool: str, arguments: dict[str, Any], argument: str
) -> None:
    assert f"\n{argument}\n" in await error(client, tool, **arguments)


async def test_huge_results_are_refused_not_computed(client: Client) -> None:
    message = await error(client, "compound_growth", principal=1e15, rate_percent=1000, years=1000)
    assert "too large" in message


@pytest.mark.parametrize(
    "arguments",
    [
        {"principal": 10_000, "annual_rate_percent": 6, "years": 1},
        {"principal": 200_000, "annual_rate_percent": 6, "years": 30},
        {"principal": 1_000, "annual_rate_percent": 0, "years": 0.25},
        {"principal": 12_345.67, "annual_rate_percent": 3.9, "years": 5, "periods_per_year": 4},
    ],
)
async def test_loan_steps_add_up_as_shown(client: Client, arguments: dict[str, Any]) -> None:
    """Every "a x b = c" and "a - b = c" step gives c from the a and b it shows (to the cent shown)."""
    out = await ok(client, "loan_payment", **arguments)
    steps = {s.split(" = ")[0]: s for s in out["steps"]}
    total = next(s for k, s in steps.items() if k.startswith("total paid"))
    factor, count, shown = re.fullmatch(r"total paid = ([\d.]+) x (\d+) = ([\d.]+)", total).groups()  # type: ignore[union-attr]
    assert (
        round(float(factor) * int(count), 2)
        == pytest.approx(float(shown))
        == pytest.approx(out["total_paid"])
    )
    interest = next(s for k, s in steps.items() if k.startswith("total interest"))
    paid, principal, left = re.fullmatch(
        r"total interest = ([\d.]+) - ([\d.]+) = (-?[\d.]+)", interest
    ).groups()  # type: ignore[union-attr]
    assert (
        round(float(paid) - float(principal), 2)
        == pytest.approx(float(left))
        == pytest.approx(out["total_interest"])
    )
    assert out["total_interest"] >= 0 and str(out["total_interest"]) != "-0.0"
    payment_step = next(s for s in out["steps"] if "payment =" in s and "≈" in s)
    exact, rounded = re.search(r"= ([\d.]+) ≈ ([\d.]+)$", payment_step).groups()  # type: ignore[union-attr]
    assert exact == factor and float(rounded) == out["payment"] == round(float(exact), 2)
