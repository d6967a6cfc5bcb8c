"""The researcher's relevance threshold, measured on questions the Python language reference answers and on
questions it does not (geography, cooking, sports, other languages' features): the first are covered with real
quotes, the second get ``covered: false`` with confidence 0, never an answer stitched from loosely matching
sentences."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from podium.agents.text.words import key_terms, overlap
from tests.agents.test_specialists_support import Harness, answer, specialist

pytestmark = pytest.mark.anyio

IN_CORPUS = [
    "How does the with statement use a context manager?",
    "What does the yield expression do in a generator?",
    "How do generators work?",
    "How do try and except handle exceptions?",
    "What is a lambda expression?",
    "What does the nonlocal statement do?",
    "How do async and await work with coroutines?",
    "How are function decorators applied?",
    "What does the global statement do?",
    "How does the for loop iterate?",
    "How do I define a class?",
    "How does import find modules?",
    "What are keyword arguments?",
    "How does slicing work on sequences?",
    "How does the match statement work?",
    "What does assert do?",
    "How do list comprehensions work?",
    "How does the del statement work?",
    "What does the pass statement do?",
]
OUT_OF_CORPUS = [
    # geography
    "What is the capital of Australia?",
    "What is the capital of France?",
    "What is the tallest mountain in the world?",
    "What is the population of Tokyo?",
    # cooking
    "How do I bake sourdough bread?",
    "How long should I boil an egg?",
    "How do I make a good risotto?",
    "How do I season a cast iron pan?",
    # sports
    "Who won the 2018 FIFA World Cup?",
    "How many players are on a basketball team?",
    "What is the offside rule in football?",
    # other languages' features, not in the Python documentation
    "How do Java interfaces work?",
    "How do Java generics work?",
    "How do Kotlin coroutines work?",
    "What is a Ruby block?",
    "What are Haskell monads?",
    "What is a Rust borrow checker?",
    "How do C++ templates work?",
    "What are goroutines in Go?",
    "How does JavaScript hoisting work?",
    # everything else
    "What will the weather be like in Paris tomorrow?",
    "Who wrote Hamlet?",
    "What is photosynthesis?",
]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def researcher() -> AsyncIterator[Harness]:
    async with specialist("researcher") as agent:
        yield agent


@pytest.mark.parametrize("question", IN_CORPUS)
async def test_questions_the_reference_answers_are_covered(researcher: Harness, question: str) -> None:
    data, _ = answer(await researcher.ask(question))
    assert data["covered"] is True, data["result"]
    assert 0.5 < data["confidence"] <= 1
    wanted = key_terms(question)
    # a quote about the question, read in its document ("pass" is a null operation, in the pass document)
    assert max(overlap(wanted, f"{c['quote']} {c['docId']}") for c in data["citations"]) > 0.5
    for citation in data["citations"]:  # every quote is the document's own words
        page = await researcher.tools.call("docs__read", {"id": citation["docId"], "length": 20_000})
        assert " ".join(citation["quote"].split()) in " ".join(page.data["text"].split())


@pytest.mark.parametrize("question", OUT_OF_CORPUS)
async def test_questions_it_does_not_answer_are_not_covered(researcher: Harness, question: str) -> None:
    data, text = answer(await researcher.ask(question))
    assert data["covered"] is False, data["result"]
    assert data["confidence"] == 0 and data["citations"] == [] and data["findings"] == []
    assert data["result"].startswith(f"The documentation does not cover this question: {question}")
    assert text == data["result"]


async def test_the_answer_names_what_no_document_mentions(researcher: Harness) -> None:
    data, _ = answer(await researcher.ask("What is the capital of Australia?"))
    assert data["result"].endswith("(no document found mentions australia)")
