"""Pure pieces of the registry: tokenising and BM25, card URLs and address checks, the exported names."""

from __future__ import annotations

import pytest

from podium import registry
from podium.registry.errors import RegistryError, UrlNotAllowed
from podium.registry.fetch import card_url, is_public
from podium.registry.ranking import BM25, stem, tokenize


def test_tokenize_lowercases_drops_stop_words_and_stems() -> None:
    assert tokenize("The Loans, computing PAYMENTS!") == ["loan", "comput", "payment"]
    assert stem("studies") == stem("study") and stem("running") == "run" and stem("class") == "class"
    assert stem("grades") == stem("grading")


def test_bm25_prefers_rare_terms_and_dense_matches() -> None:
    index = BM25(
        [
            ("a", "mortgage", tokenize("mortgage loan payment calculator")),
            ("b", "news", tokenize("news about the loan market and the economy and many other things")),
            ("c", "poetry", tokenize("writes poems")),
        ]
    )
    hits = index.search("loan payment")
    assert [(h.agent, h.skill) for h in hits] == [("a", "mortgage"), ("b", "news")]
    assert hits[0].score > hits[1].score > 0
    assert index.search("poems")[0].agent == "c"
    assert index.search("quantum") == []
    assert BM25([]).search("anything") == []


def test_bm25_agent_scores_as_its_best_skill() -> None:
    index = BM25(
        [
            ("writer", "write", tokenize("write an answer from notes")),
            ("writer", "revise", tokenize("revise a draft from feedback")),
            ("reviewer", "review", tokenize("review a draft against a rubric")),
        ]
    )
    ranked = index.rank_agents("revise draft feedback")
    assert [(h.agent, h.skill) for h in ranked] == [("writer", "revise"), ("reviewer", "review")]


def test_card_url() -> None:
    assert card_url("https://a.example") == "https://a.example/.well-known/agent-card.json"
    assert card_url("https://a.example/x/") == "https://a.example/x/.well-known/agent-card.json"
    assert card_url("https://a.example/cards/me.json") == "https://a.example/cards/me.json"
    for bad in ("ftp://a.example/", "a.example", "https://user:pw@a.example/", "http:///x"):
        with pytest.raises(UrlNotAllowed):
            card_url(bad)


def test_public_addresses() -> None:
    assert is_public("93.184.216.34") and is_public("2606:2800:220:1:248:1893:25c8:1946")
    for private in ("127.0.0.1", "10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254", "::1", "fe80::1",
                    "0.0.0.0", "100.64.0.1", "::ffff:127.0.0.1", "224.0.0.1", "fd00::1"):  # fmt: skip
        assert not is_public(private), private


def test_exported_members() -> None:
    exported = set(registry.__all__)
    assert exported == {name for name in dir(registry) if not name.startswith("_")} - {
        "card_http", "cards", "entries", "errors", "fetch", "http", "ranking", "records", "signing", "store",
    }  # fmt: skip
    for name in exported:
        assert getattr(registry, name).__module__.startswith("podium.registry."), name
    errors = [getattr(registry, n) for n in exported if isinstance(getattr(registry, n), type)]
    for cls in errors:
        if issubclass(cls, Exception):
            assert issubclass(cls, RegistryError) and cls().message == cls.default
