"""The researcher on real topics of the Python reference: the sentence that defines the topic or states its
rule comes first, the topic's key sentence is kept, neighbouring topics are dropped, no sentence is cited
twice; and the writer answers in the form asked (a comparison side by side, a list, a length)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from podium.agents.text import forms, relevance
from tests.agents.test_specialists_support import Harness, answer, specialist

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def researcher() -> AsyncIterator[Harness]:
    async with specialist("researcher") as agent:
        yield agent


# (question, how the first finding starts, words a kept finding must hold, words no finding may hold)
RANKED = [
    (
        "What does the global statement do?",
        'The "global" statement is a declaration',
        "interpreted as globals",
        (),
    ),
    ("What does the break statement do?", "It terminates the nearest enclosing loop", "", ()),
    (
        "What is a lambda expression in Python?",
        "Lambda expressions (sometimes called lambda forms)",
        "anonymous",
        (),
    ),
    ("What does the pass statement do?", '"pass" is a null operation', "", ()),
    ("What is the assert statement for?", "Assert statements are a convenient way", "debugging", ()),
    (
        "What is the 'async with' statement for?",
        "An *asynchronous context manager*",
        "",
        ("async for",),
    ),
    (
        "Explain list comprehensions in Python.",
        "A list display yields a new list object",
        "comprehension",
        ("dict comprehension",),
    ),
]


@pytest.mark.parametrize(("question", "first", "kept", "never"), RANKED, ids=[r[0] for r in RANKED])
async def test_the_answering_sentence_comes_first(
    researcher: Harness, question: str, first: str, kept: str, never: tuple[str, ...]
) -> None:
    data, _ = answer(await researcher.ask(question))
    texts = [f["text"] for f in data["findings"]]
    assert texts and texts[0].startswith(first), texts
    assert kept in " ".join(texts), texts
    for word in never:
        assert all(word not in t for t in texts), texts


@pytest.mark.parametrize(
    "question", ["What does the global statement do?", "Compare Python's try statement and with statement."]
)
async def test_no_sentence_is_cited_twice(researcher: Harness, question: str) -> None:
    data, _ = answer(await researcher.ask(question))
    quotes = [" ".join(c["quote"].split()) for c in data["citations"]]
    assert len(quotes) == len(set(quotes)), quotes  # "global must precede all uses" is in two documents
    assert all(len(f["citations"]) == 1 for f in data["findings"])


async def test_a_comparison_finds_both_sides(researcher: Harness) -> None:
    data, _ = answer(await researcher.ask("What is the difference between break and continue?"))
    texts = " ".join(f["text"] for f in data["findings"])
    assert (
        "terminates the nearest enclosing loop" in texts
        and "next cycle of the nearest enclosing loop" in texts
    )


def test_topics_and_forms_are_read_from_the_question() -> None:
    assert relevance.topics("Summarize what the 'async with' statement is for") == ["async with"]
    assert relevance.topics("What is the difference between break and continue?") == ["break", "continue"]
    assert relevance.topics("How do I catch an exception?") == ["try"]
    assert relevance.topics("What is a lambda expression?") == ["lambda"]
    assert forms.form("Compare the try statement and the with statement").sides == ["try", "with"]
    assert forms.form("In two sentences, what does yield do?").max_sentences == 2
    assert forms.form("Briefly, what is pass?").max_sentences == forms.BRIEF
    assert forms.form("List the sequence types").kind == "list"
    assert forms.form("How do I import a module?").kind == "howto"


NOTES = [
    {
        "text": 'The "try" statement specifies exception handlers.',
        "citations": [{"doc_id": "try", "quote": "q1"}],
    },
    {
        "text": 'The "with" statement wraps a block with a context manager.',
        "citations": [{"doc_id": "with", "quote": "q2"}],
    },
    {
        "text": 'The "for" statement iterates over a sequence.',
        "citations": [{"doc_id": "for", "quote": "q3"}],
    },
]


async def write(question: str) -> str:
    async with specialist("writer") as agent:
        data, _ = answer(await agent.ask(question, {"notes": NOTES}))
    return str(data["result"]).split("\n\nSources:")[0]


async def test_the_writer_follows_the_form_asked() -> None:
    compared = await write("Compare the try statement and the with statement.")
    assert compared.splitlines()[0].startswith("- try: The") and "\n\n- with: The" in compared
    assert '"for"' not in compared  # about neither side: dropped
    assert (
        await write("In one sentence, what is the try statement?")
        == 'The "try" statement specifies exception handlers [1].'
    )
    listed = await write("List what these statements do.")
    assert [line[:6] for line in listed.split("\n\n")] == ["- The "] * 3
