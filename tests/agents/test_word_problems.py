"""The analyst on word problems of every kind the offline mode promises: speed, distance and time; unit
prices and rates; proportions and inverse proportions; chained percentages; unit conversions; simple and
compound interest; loans; averages, median, mode and range. Each answer is worked out here by hand; the
analyst must reach it through the calc server, state it with its unit and the rule it applied, and be
routed as a computation (not sent to research)."""

from __future__ import annotations

import math
import statistics

import pytest

from podium.agents.text.routing import classify
from tests.agents.test_specialists_support import answer, specialist

pytestmark = pytest.mark.anyio

# (question, operation, answer by hand, words the sentence must hold: the unit and the rule)
PROBLEMS: list[tuple[str, str, float, tuple[str, ...]]] = [
    # speed, distance, time
    (
        "If a train travels 300 km in 2.5 hours, what is its average speed?",
        "speed",
        300 / 2.5,
        ("km/h", "distance ÷ time"),
    ),
    ("A runner covers 10 km in 50 minutes. What is her speed in km/h?", "speed", 10 / (50 / 60), ("km/h",)),
    (
        "A car drives at 60 mph for 3.5 hours. How far does it go?",
        "distance",
        60 * 3.5,
        ("miles", "speed × time"),
    ),
    ("How long does it take to cycle 45 km at 18 km/h?", "time", 45 / 18, ("hours", "distance ÷ speed")),
    # unit prices and rates
    ("If 3 kg of apples cost $7.50, what is the price per kg?", "unit_price", 7.5 / 3, ("per kg",)),
    ("A 12-pack of soda costs $8.40. How much does one can cost?", "unit_price", 8.4 / 12, ("price of one",)),
    (
        "A printer prints 24 pages per minute. How many pages in 15 minutes?",
        "rate",
        24 * 15,
        ("pages", "rate × time"),
    ),
    (
        "Which is cheaper per gram: 500 g for $4 or 750 g for $5.40?",
        "cheaper",
        4 / 500 - 5.4 / 750,
        ("750 g for 5.40 is cheaper", "0.0072"),
    ),
    # proportions
    (
        "A recipe needs 250 g of flour for 4 people. How much for 10 people?",
        "proportion",
        250 / 4 * 10,
        ("g", "direct proportion"),
    ),
    ("If 5 notebooks cost $12, how much do 8 notebooks cost?", "proportion", 12 / 5 * 8, ("8 notebooks",)),
    (
        "On a map with a scale of 1:50,000, how many km is 8 cm?",
        "scale",
        8 * 50000 / 100000,
        ("km", "× scale"),
    ),
    (
        "3 workers take 12 days to build a wall. How long would 4 workers take?",
        "inverse",
        12 * 3 / 4,
        ("days", "inverse proportion"),
    ),
    ("If 6 pumps empty a tank in 10 hours, how long do 15 pumps take?", "inverse", 10 * 6 / 15, ("hours",)),
    # chained percentages
    (
        "A shop marks up a $80 jacket by 25% and then discounts it by 20%. What is the final price?",
        "chained",
        80 * 1.25 * 0.8,
        ("+25%, then −20%",),
    ),
    (
        "A $50 item is discounted 30%, then a further 10% off the sale price. What do I pay?",
        "chained",
        50 * 0.7 * 0.9,
        ("−30%, then −10%",),
    ),
    (
        "A price of 200 rises by 10% and then by another 10%. What is the new price?",
        "chained",
        200 * 1.1 * 1.1,
        ("+10%, then +10%",),
    ),
    # conversions
    (
        "Convert 100 degrees Fahrenheit to Celsius.",
        "conversion",
        (100 - 32) * 5 / 9,
        ("°C", "(°F - 32) × 5/9"),
    ),
    ("What is 30 °C in Fahrenheit?", "conversion", 30 * 9 / 5 + 32, ("°F",)),
    ("How many kilometres is 26.2 miles?", "conversion", 26.2 * 1.609344, ("km", "1 mile = 1.609344 km")),
    ("Convert 5 kg to pounds.", "conversion", 5 / 0.45359237, ("lb",)),
    ("How many seconds are in 3 hours?", "conversion", 3 * 3600, ("s",)),
    ("Convert 2.5 litres to millilitres.", "conversion", 2500, ("ml",)),
    # interest and loans
    (
        "What is the simple interest on $2,000 at 5% per year for 3 years?",
        "simple_interest",
        2000 * 0.05 * 3,
        ("principal × rate × years",),
    ),
    (
        "What is the total amount after 2 years on 1500 at 6% simple interest?",
        "simple_total",
        1500 + 1500 * 0.06 * 2,
        ("total = principal +",),
    ),
    (
        "I invest 1000 at 5% interest compounded annually for 10 years. How much do I have?",
        "growth",
        round(1000 * 1.05**10, 2),
        (),
    ),
    (
        "How much will $5,000 grow to in 3 years at 4% compounded quarterly?",
        "growth",
        round(5000 * 1.01**12, 2),
        (),
    ),
    ("I borrow 10,000 at 5% for 3 years, paid monthly. What is the monthly payment?", "loan", 299.71, ()),
    # averages, median, mode, range
    (
        "My test scores were 82, 90 and 77. What is my average score?",
        "statistics",
        statistics.mean([82, 90, 77]),
        (),
    ),
    ("Find the median of 7, 1, 3, 9, 5, 11.", "statistics", statistics.median([7, 1, 3, 9, 5, 11]), ()),
    ("What is the mode of 2, 3, 3, 5, 7, 3, 2?", "statistics", 3, ("mode = 3",)),
    ("What is the range of 12, 45, 7, 30, 22?", "statistics", 45 - 7, ("range = 38",)),
    (
        "A student scored 70, 85 and 90. What must she score on the fourth test to average 85?",
        "needed",
        85 * 4 - 245,
        (),
    ),
]


@pytest.mark.parametrize(
    ("question", "operation", "expected", "words"), PROBLEMS, ids=[p[0] for p in PROBLEMS]
)
async def test_word_problems(question: str, operation: str, expected: float, words: tuple[str, ...]) -> None:
    assert classify(question).kind == "compute", question  # a computation, not a documentation question
    async with specialist("analyst") as agent:
        data, text = answer(await agent.ask(question))
    assert data["operation"] == operation, data
    assert math.isclose(data["value"], expected, rel_tol=1e-9, abs_tol=1e-9), (data["value"], expected)
    assert data["toolsCalled"] == [data["tool"]] and data["steps"] and "Steps" in text
    for word in words:
        assert word in data["result"], data["result"]


async def test_a_word_problem_shows_the_tool_working_and_the_exact_figure() -> None:
    async with specialist("analyst") as agent:
        data, _ = answer(
            await agent.ask("If a train travels 300 km in 2.5 hours, what is its average speed?")
        )
    assert data["result"] == "The average speed is 120 km/h (speed = distance ÷ time = 300 km ÷ 2.5 h)."
    assert data["steps"] == ["300 / 2.5 = 120"]


@pytest.mark.parametrize(
    ("question", "shown"),
    [
        ("What is 2 ** 100?", "2 ** 100 = 1,267,650,600,228,229,401,496,703,205,376"),
        ("What is 123456789 * 1000?", "123456789 * 1000 = 123,456,789,000"),
        ("What is 0.1 + 0.2?", "0.1 + 0.2 = 0.3"),
        ("What is 1 / 3?", "1 / 3 ≈ 0.333333333333"),
        ("What is the square root of 2?", "sqrt(2) ≈ 1.41421356237"),
    ],
)
async def test_results_are_shown_exactly_or_to_significant_digits(question: str, shown: str) -> None:
    async with specialist("analyst") as agent:
        data, _ = answer(await agent.ask(question))
    assert data["result"] == shown


@pytest.mark.parametrize(
    "question",
    [
        "How many arguments can a lambda take?",
        "What does range(10) return?",
        "How long is a piece of string?",
    ],
)
def test_questions_about_code_or_without_quantities_are_not_word_problems(question: str) -> None:
    assert classify(question).kind == "research"
