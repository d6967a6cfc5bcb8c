"""The specialists' pure parts: routing a task to the agent that fits, finding computations in words,
cited drafts (parse, cite, render), question parts and quote selection."""

from __future__ import annotations

import pytest

from podium.agents.specialists.checks import question_parts
from podium.agents.text import drafts, quantities
from podium.agents.text.routing import classify
from podium.agents.text.words import best_sentences, key_terms, markers, sentences, strip_markers


@pytest.mark.parametrize(
    ("text", "data", "kind", "agent"),
    [
        ("What does the reference say about the with statement?", None, "research", "researcher"),
        ("How does name resolution work in nested scopes?", None, "research", "researcher"),
        ("What is 15% of 240?", None, "compute", "analyst"),
        ("Monthly payment on a 250,000 loan at 4.2% over 30 years", None, "compute", "analyst"),
        ("Write a poem about the sea", None, "creative", None),
        ("Write a haiku on context managers", None, "creative", None),
        ("Review this draft against the rubric", None, "review", "reviewer"),
        ("Summarise these notes into a short answer", None, "write", "writer"),
        ("anything", {"notes": [{"text": "x"}]}, "write", "writer"),
        ("anything", {"draft": "d"}, "review", "reviewer"),
        ("anything", {"draft": "d", "feedback": ["f"]}, "revise", "writer"),
    ],
)
def test_tasks_are_routed_to_the_agent_that_fits(
    text: str, data: dict | None, kind: str, agent: str | None
) -> None:
    route = classify(text, data)
    assert (route.kind, route.agent) == (kind, agent)


@pytest.mark.parametrize(
    ("text", "tool", "arguments"),
    [
        ("What is 17.5% of 2,340?", "evaluate", {"expression": "17.5% * 2340"}),
        ("What is 12 times 7 divided by 4?", "evaluate", {"expression": "12 * 7 / 4"}),
        ("What is 2^10?", "evaluate", {"expression": "2**10"}),
        ("50 is what percent of 200?", "evaluate", {"expression": "50 / 200 * 100"}),
        ("Mean and median of 3, 7, 7, 19", "statistics", {"values": [3, 7, 7, 19]}),
        (
            "Compound growth of 10,000 at 5% a year for 10 years, compounded monthly",
            "compound_growth",
            {"principal": 10_000, "rate_percent": 5, "years": 10, "periods_per_year": 12},
        ),
        (
            "Payments on a 200k mortgage at 6% over 360 months, paid quarterly",
            "loan_payment",
            {"principal": 200_000, "annual_rate_percent": 6, "years": 30, "periods_per_year": 4},
        ),
    ],
)
def test_computations_found_in_words(text: str, tool: str, arguments: dict) -> None:
    found = quantities.find(text)
    assert found is not None and (found.tool, found.arguments) == (tool, arguments)


def test_a_draft_round_trips_and_gains_citations() -> None:
    text = "First claim about the with statement [1]. Second claim about managers.\n\nSources:\n[1] with — “quoted words”"
    draft = drafts.parse(text)
    assert draft.sentences == ["First claim about the with statement [1].", "Second claim about managers."]
    assert [(s.marker, s.doc_id, s.quote) for s in draft.sources] == [(1, "with", "quoted words")]
    assert draft.render() == text
    marker = draft.marker_for("context-managers", "more words")
    draft.replace("Second claim about managers.", drafts.cite("Second claim about managers.", [marker]))
    assert "managers [2]." in draft.render() and "[2] context-managers — “more words”" in draft.render()
    assert drafts.is_claim("The with statement calls __exit__ on leaving.")
    assert not drafts.is_claim("Why does it matter?") and not drafts.is_claim("Sources:")


def test_text_helpers() -> None:
    assert markers("A claim [1][2, with] [not a marker].") == ["1", "2", "with"]
    assert strip_markers("A claim [1][with].") == "A claim."
    assert key_terms("What does the Python reference say about the with statement?") == ["with", "statement"]
    assert sentences("One sentence here. Two: here!\n- a list item") == [
        "One sentence here.",
        "Two: here!",
        "- a list item",
    ]
    assert question_parts("What does with do, and how do context managers work?") == [
        "What does with do",
        "how do context managers work",
    ]
    doc = "Heading\n*******\n\nThe with statement wraps a block. Something unrelated entirely here.\n"
    assert best_sentences(doc, "with statement", limit=1) == ["The with statement wraps a block."]


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("fifteen percent of two hundred", "15 percent of 200"),
        ("three, five and ten", "3, 5 and 10"),  # a list stays a list
        ("two hundred and five", "205"),
        ("one million two hundred thousand and six", "1200006"),
        ("a thousand dollars", "1000 dollars"),
        ("twenty-five plus seventy", "25 plus 70"),
        ("three point two five times two", "3.25 times 2"),
        ("twenty twenty", "20 20"),
        ("ninety nine", "99"),
        ("first-class functions and a zero-cost loop", "first-class functions and a zero-cost loop"),
    ],
)
def test_numbers_written_as_words(text: str, digits: str) -> None:
    from podium.agents.text.numwords import words_to_numbers

    assert words_to_numbers(text) == digits
