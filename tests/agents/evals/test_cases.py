"""Scoring one answer against one case, and reading an evaluation file (bad lines named)."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.agents.evals.cases import Case, CaseFileError, load, numbers_in, score, sentences


def _case(**expect: object) -> Case:
    return Case.model_validate({"question": "q", "expect": expect})


def test_a_number_within_tolerance_passes_and_a_rounded_exact_number_does_not() -> None:
    assert score(_case(number=120), "completed", "The speed is 120 km/h [1].")[0]
    assert score(_case(number=1628.89, tolerance=1e-5), "completed", "It grows to 1,628.89.")[0]
    assert not score(_case(number=120), "completed", "The speed is 12 km/h.")[0]
    big = "1267650600228229401496703205376"
    assert score(
        _case(number=big, exact=True), "completed", "2 ** 100 = 1,267,650,600,228,229,401,496,703,205,376"
    )[0]
    passed, why = score(_case(number=big, exact=True), "completed", "2 ** 100 = 1.26765e+30")
    assert not passed and "exactly" in why


def test_a_number_only_in_the_sources_is_not_stated() -> None:
    text = "2 ** 100 = 1.26765e+30 [1].\n\nSources:\n[1] calc:evaluate — “2 ** 100 = 1267650600228229401496703205376”"
    assert not score(_case(number="1267650600228229401496703205376", exact=True), "completed", text)[0]


def test_contains_excludes_and_length() -> None:
    answer = "A context manager wraps a block [1]. It calls __enter__ [2]. Then __exit__ [3]."
    assert score(_case(contains=["Context Manager", "nothing|__enter__"]), "completed", answer)[0]
    assert "missing" in score(_case(contains=["async"]), "completed", answer)[1]
    assert "mentions" in score(_case(excludes=["__exit__"]), "completed", answer)[1]
    assert score(_case(max_sentences=3), "completed", answer)[0]
    assert "3 sentences" in score(_case(max_sentences=2), "completed", answer)[1]
    assert sentences('The "pass" statement, e.g. here, does nothing. It is 1.5 times nothing.') == 2


def test_a_refusal_is_a_failed_task_or_an_answer_that_says_it_cannot() -> None:
    assert score(_case(refuse=True), "failed", "The documentation does not cover this")[0]
    assert score(_case(refuse=True), "completed", "I could not work out what to compute")[0]
    assert not score(_case(refuse=True), "completed", "Paris is the capital of France.")[0]
    # and a failed task fails a case that expects an answer
    assert "task failed" in score(_case(number=1), "failed", "no agent")[1]


def test_numbers_in_reads_grouping_decimals_and_signs() -> None:
    assert [str(n) for n in numbers_in("-3, 1,234.5 and 7.25 (and 1e3)")] == ["-3", "1234.5", "7.25", "1E+3"]


def test_load_names_the_file_line_and_field(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        '{"question": "What is 1+1?", "expect": {"number": 2}}\n\n{"id": "x", "question": "?", "expect": {"refuse": true}}\n'
    )
    assert [c.id for c in load(good)] == ["line-1", "x"]
    bad = tmp_path / "bad.jsonl"
    for line, message in [
        ("{not json", "bad.jsonl:1: not JSON"),
        ('{"question": "q", "expect": {}}', "bad.jsonl:1: expect: Value error, expect needs at least one"),
        ('{"question": "q", "expect": {"nmber": 2}}', "bad.jsonl:1: expect.nmber: Extra inputs"),
        ('{"expect": {"number": 2}}', "bad.jsonl:1: question: Field required"),
        ('{"question": "q", "expect": {"number": "lots"}}', "expect.number: Input should be a valid decimal"),
    ]:
        bad.write_text(line + "\n")
        with pytest.raises(CaseFileError) as caught:
            load(bad)
        assert message in str(caught.value), str(caught.value)
    with pytest.raises(CaseFileError, match="cannot read"):
        load(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(CaseFileError, match="holds no cases"):
        load(tmp_path / "empty.jsonl")


def test_the_documented_example_file_is_a_valid_bank(tmp_path: Path) -> None:
    from tests.docs import block

    bank = tmp_path / "example.jsonl"
    bank.write_text(block("evals.md", "## The file", "jsonl"))
    cases = load(bank)
    assert [c.id for c in cases] == ["pow", "speed", "global", "brief", "paris"]
    assert cases[0].expect.exact and cases[4].expect.refuse and cases[3].expect.max_sentences == 1
