"""The analyst on everyday phrasings: discounts, rises, tax and tips, what percentage, ratios, averages, numbers
in words, and a question given only in the data part. Each answer is computed here, independently, from the
numbers in the question; the analyst must reach it through the calc server, and say plainly what it cannot do.
"""

from __future__ import annotations

import math
import statistics

import pytest
from a2a.helpers.proto_helpers import new_data_part
from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import Message, Role, SendMessageRequest, Task

from podium.agents.text.routing import classify
from tests.agents.test_specialists_support import answer, rejection, specialist

pytestmark = pytest.mark.anyio

# (question, the operation the analyst reports, the answer worked out by hand)
PHRASINGS: list[tuple[str, str, float]] = [
    # a price after a discount
    ("a $1200 laptop is 15% off, what do I pay?", "discount", 1200 * (1 - 0.15)),
    ("A $80 jacket with a 25% discount costs how much?", "discount", 80 * 0.75),
    ("A $2,000 TV is on sale for 30% off. How much is it now?", "discount", 2000 * 0.70),
    ("What is the price of a $250 jacket after a 20% markdown?", "discount", 250 * 0.80),
    ("What is 1200 minus 15 percent?", "arithmetic", 1200 - 1200 * 0.15),
    ("How much do I save with 15% off a 1200 laptop?", "percentage", 1200 * 0.15),
    # after a rise
    ("The price of a 50 dollar item rose by 10%. What is the new price?", "increase", 50 * 1.10),
    ("Rent of 1500 increases by 3%, what is the new rent?", "increase", 1500 * 1.03),
    ("My salary of 52,000 goes up by 4%. What will I earn?", "increase", 52_000 * 1.04),
    ("Prices rose 2.5% on a 40 dollar basket, what does it cost now?", "increase", 40 * 1.025),
    # tax and tips: the share, or the total
    ("What is 8% sales tax on $45?", "percentage", 45 * 0.08),
    ("What do I pay for a $45 item with 8% sales tax?", "increase", 45 * 1.08),
    ("How much is a 20% tip on a $60 bill?", "percentage", 60 * 0.20),
    ("What's the total with a 15% tip on 80?", "increase", 80 * 1.15),
    ("Our restaurant bill is $84. How much is an 18% tip?", "percentage", 84 * 0.18),
    ("Our restaurant bill is $84. What do we pay in total with an 18% tip?", "increase", 84 * 1.18),
    # what percentage one number is of another
    ("What percentage of 200 is 50?", "what_percent", 50 / 200 * 100),
    ("What percent is 30 of 120?", "what_percent", 30 / 120 * 100),
    ("18 out of 24 as a percentage?", "what_percent", 18 / 24 * 100),
    ("45 is what percent of 60?", "what_percent", 45 / 60 * 100),
    ("What is the percentage increase from 80 to 100?", "percent_change", (100 - 80) / 80 * 100),
    # ratios
    ("What is the ratio of 3 to 4?", "ratio", 3 / 4),
    ("What is the ratio between 45 and 60?", "ratio", 45 / 60),
    # averages
    ("What is the average of 3, 5 and 10?", "statistics", statistics.mean([3, 5, 10])),
    ("Average of 3, 5, and 10", "statistics", statistics.mean([3, 5, 10])),
    ("What's the mean of 2.5 and 4?", "statistics", statistics.mean([2.5, 4])),
    # numbers written as words
    ("What is twelve times seven?", "arithmetic", 12 * 7),
    ("What is fifteen percent of two hundred?", "percentage", 0.15 * 200),
    ("What is two hundred and fifty plus twelve?", "arithmetic", 250 + 12),
    ("What is the average of ten, twenty and thirty?", "statistics", statistics.mean([10, 20, 30])),
    ("A forty dollar shirt is twenty percent off. What do I pay?", "discount", 40 * 0.80),
]


@pytest.mark.parametrize(("question", "operation", "expected"), PHRASINGS, ids=[q for q, _, _ in PHRASINGS])
async def test_everyday_phrasings(question: str, operation: str, expected: float) -> None:
    assert classify(question).agent == "analyst", (
        question
    )  # the researcher would refuse it, naming the analyst
    async with specialist("analyst") as agent:
        data, text = answer(await agent.ask(question))
    assert data["operation"] == operation, data
    assert math.isclose(data["value"], expected, rel_tol=1e-9, abs_tol=1e-9), (data["value"], expected)
    assert data["toolsCalled"] == [data["tool"]] and data["steps"]
    assert f"{expected:,.10g}" in data["result"], data["result"]  # the answer is in the sentence
    assert "Steps" in text


async def test_a_ratio_is_also_given_in_lowest_terms() -> None:
    async with specialist("analyst") as agent:
        data, _ = answer(await agent.ask("What is the ratio of 45 to 60?"))
    assert data["result"] == "The ratio of 45 to 60 is 0.75 (3:4)."


def message(text: str | None, data: dict[str, object]) -> SendMessageRequest:
    msg = Message(message_id="m-" + (text or "none"), role=Role.ROLE_USER)
    if text is not None:
        msg.parts.add(text=text)
    msg.parts.append(new_data_part(data))
    return SendMessageRequest(message=msg)


@pytest.mark.parametrize("text", ["", None], ids=["empty text part", "no text part"])
async def test_a_question_given_only_in_the_data_part(text: str | None) -> None:
    async with specialist("analyst") as agent:
        task = await agent.handler.on_message_send(
            message(text, {"question": "a $1200 laptop is 15% off, what do I pay?"}), ServerCallContext()
        )
        assert isinstance(task, Task)
        data, _ = answer(task)
    assert data["operation"] == "discount" and data["value"] == 1200 * 0.85


@pytest.mark.parametrize(
    ("question", "read"),
    [
        ("Split 120 in the ratio 2:3", "I read 120, 2, 3, but not which calculation"),
        ("What is 15% of the difference between my two salaries?", "I read 15%, 2, but not which"),
        ("If I buy 3 shirts at 20% off and 2 hats at 10% off, what is my total?", "I read 3, 20%, 2, 10%,"),
        ("A train goes 300 km. How long does it take?", "I read 300 km, but not which calculation"),
        (
            "Tom has some apples and gives a few away. How many are left?",
            "it gives no numbers to compute with",
        ),
    ],
)
async def test_what_it_cannot_read_it_says_plainly(question: str, read: str) -> None:
    async with specialist("analyst") as agent:
        refused = rejection(await agent.ask(question))
    assert refused["reason"].startswith("I could not work out what to compute"), refused
    assert read in refused["reason"], refused["reason"]  # what it understood, named
    assert (
        "15% off" in refused["reason"]
        and "300 km in 2.5" in refused["reason"]
        and "rephrase it" in refused["reason"]
    )
    assert refused["suggestedAgent"] is None  # it is a calculation: no other agent would do better


@pytest.mark.parametrize(
    "question",
    [
        "How do I apply a 10% discount to a list of 3 prices in Python?",
        "What is a 10% discount?",
        "Which one of the with statement's methods runs first?",
        "Is a generator one kind of iterator?",
    ],
)
def test_prose_that_mentions_numbers_stays_with_the_researcher(question: str) -> None:
    assert classify(question).kind == "research", question
