"""The researcher: answers a question from the docs server, every finding citing the document it
comes from with a real quote.

Offline it derives 1-3 searches from the question's key terms, reads the best 1-3 documents and quotes
the sentences that best match the question; confidence comes from the BM25 scores and how many of the
question's key terms the quotes hold. When no quote holds more than half of the question's key terms it
says the documentation does not cover the question (``covered: false``, confidence 0) instead of passing
off loosely matching sentences as an answer. With an engine, the model runs a tool
loop over ``docs__search``/``docs__read`` and writes findings as ``- claim [doc id]`` lines; quotes are
then taken from the documents the tools actually returned.
"""

from __future__ import annotations

import re
from typing import Any

from a2a.server.agent_execution import AgentExecutor

from podium.agents.host.context import AgentContext
from podium.agents.llm import run_tool_loop
from podium.agents.specialists.base import Failed, Job, Specialist
from podium.agents.specialists.models import Citation, Finding, ResearchInput, ResearchOutput
from podium.agents.text import relevance
from podium.agents.text.words import best_sentences, key_terms, overlap, strip_markers, terms
from podium.mcp_servers.bm25 import tokenize

MIN_SCORE = 3.0  # below this BM25 score a hit shares only incidental words with the question
# A quote answers the question only if it holds more than this share of the question's key terms. Measured on
# questions in and out of the corpus (tests/agents/test_researcher_relevance.py): quotes that answer hold 2 of 3
# key terms or more, while a question the documentation does not cover ("the capital of Australia", "Java
# interfaces") matches one word of it at best ("capital", "interface"), wherever that word happens to occur.
RELEVANT = 0.5
SCORE_SCALE = 6.0  # a top score of this much gives half the score-based confidence
READ_CHARS = 20_000
READ_DOCS = 5  # documents read to find the passage that answers; at most max_sources of them are cited
OWN_DOC = 1.0  # a sentence of the topic's own document ("global" for the global statement) ranks higher
QUOTES = 4  # findings for one topic; a comparison gets QUOTES_PER_SIDE for each side
QUOTES_PER_SIDE = 2
KEEP = 0.45  # a sentence scoring less than this share of the best answers a neighbouring question

SYSTEM = """You are the researcher of a multi-agent team. Answer the user's question only from the \
documentation you can search with the docs__search and docs__read tools: search first, then read the \
most relevant documents. Every finding must cite the document ids it comes from.

Reply with the findings only, one per line, each in the form:
- <one factual sentence> [<doc id>]
If the documentation does not answer the question, reply with exactly: NOT COVERED"""

_FINDING = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.+?)\s*$")


class Researcher(Specialist):
    name = "researcher"
    skill = "research"
    input_model = ResearchInput
    engine_tools = ("docs__",)

    async def offline(self, job: Job) -> ResearchOutput:
        self.reject_unless(job, "research")
        question = job.question
        queries = search_queries(question)
        hits: dict[str, dict[str, Any]] = {}
        errors = []
        for query in queries:
            result = await job.tools.call("docs__search", {"query": query, "limit": 5})
            if result.is_error or not isinstance(result.data, dict):
                errors.append(f"search {query!r} failed: {result.text}")
                continue
            for hit in result.data.get("hits", []):
                if hit["id"] not in hits or hit["score"] > hits[hit["id"]]["score"]:
                    hits[hit["id"]] = hit
        if errors and len(errors) == len(queries):
            raise Failed(f"the docs server did not answer: {errors[-1]}")
        job.warnings += errors
        ranked = sorted(hits.values(), key=lambda h: -h["score"])
        asked = relevance.topics(question)
        candidates = [h["id"] for h in ranked if h["score"] >= MIN_SCORE][:READ_DOCS]
        # the topic's own document, when the corpus has one under its name ("global", "try", "lambda")
        own = list(dict.fromkeys(relevance.topic_doc(t) for t in asked))
        for doc_id in reversed([d for d in own if d not in candidates]):
            candidates.insert(0, doc_id)
        scored: list[tuple[float, int, str, str]] = []  # (score, order, doc id, sentence)
        texts: list[str] = []
        for order, doc_id in enumerate(candidates):
            text = await self.read(job, doc_id, quiet=doc_id not in hits)
            texts.append(text)
            bonus = OWN_DOC if doc_id in own else 0.0
            scored += [
                (r.score + bonus, order, doc_id, r.sentence) for r in relevance.rank(text, question, asked)
            ]
        findings = select(scored, asked, job.input.max_sources)
        top = ranked[0]["score"] if ranked else 0.0
        return self.compose(job, queries, findings, texts, top_score=top if findings else 0.0)

    async def read(self, job: Job, doc_id: str, *, quiet: bool = False) -> str:
        """The text of ``doc_id`` (empty when it cannot be read; ``quiet`` for a guessed id that may not exist)."""
        result = await job.tools.call("docs__read", {"id": doc_id, "length": READ_CHARS})
        if result.is_error or not isinstance(result.data, dict):
            if not quiet:
                job.warnings.append(f"read {doc_id!r} failed: {result.text}")
            return ""
        return str(result.data.get("text", ""))

    def compose(
        self,
        job: Job,
        queries: list[str],
        findings: list[Finding],
        texts: list[str],
        *,
        top_score: float,
        engine: str = "offline",
    ) -> ResearchOutput:
        """The answer from ``findings``, or ``covered: false`` when no quote holds more than half of the question's
        key terms (:data:`RELEVANT`); the answer then names the terms that no document read (``texts``) mentions."""
        question = job.question
        citations = _unique([c for f in findings for c in f.citations])
        quoted = " ".join(c.quote for c in citations)
        wanted = relevance.subject_terms(question) or terms(question)
        coverage = overlap(wanted, quoted)
        # a quote is read in its document: "It terminates the nearest enclosing loop" in "break"
        best = max((overlap(wanted, f"{c.quote} {c.doc_id}") for c in citations), default=0.0)
        homes = {relevance.topic_doc(t) for t in relevance.topics(question)}
        on_topic = any(c.doc_id in homes for c in citations)  # the topic's own document answers
        # a quote from the topic's own document answers even in other words ("iterate" for "loop over")
        if (best < RELEVANT and not (on_topic and best > 0)) or (best == RELEVANT and not on_topic):
            mentioned = set(tokenize(" ".join(texts)))
            unmentioned = [t for t in wanted if t not in mentioned]
            why = f" (no document found mentions {', '.join(unmentioned)})" if texts and unmentioned else ""
            return self.output(
                job,
                ResearchOutput,
                result=f"The documentation does not cover this question: {question}{why}",
                confidence=0.0,
                engine=engine,
                queries=queries,
                covered=False,
            )
        strength = top_score / (top_score + SCORE_SCALE) if top_score else 0.6
        confidence = round(min(1.0, 0.5 * strength + 0.5 * coverage), 3)
        lines = [f"{f.text} [{', '.join(c.doc_id for c in f.citations)}]" for f in findings]
        return self.output(
            job,
            ResearchOutput,
            result="\n".join(lines),
            citations=citations,
            confidence=confidence,
            engine=engine,
            queries=queries,
            findings=findings,
            covered=True,
        )

    async def with_engine(self, job: Job) -> ResearchOutput:
        self.reject_unless(job, "research")
        tools = job.tools.only(self.engine_tools)
        context = "".join(f"\n\nShared note {k!r}:\n{v}" for k, v in job.board.items())
        loop = job.spent(
            await run_tool_loop(
                self.engine,
                system=SYSTEM,
                prompt=job.question + context,
                tools=tools,
                token_budget=job.token_budget,
            )
        )
        read: dict[str, str] = {}
        scores: list[float] = []
        queries: list[str] = []
        for call in job.tools.calls:
            if call.result.is_error or not isinstance(call.result.data, dict):
                continue
            if call.name == "docs__read":
                doc = call.result.data
                read[doc["id"]] = read.get(doc["id"], "") + str(doc.get("text", ""))
            elif call.name == "docs__search":
                queries.append(str(call.arguments.get("query", "")))
                scores += [float(h["score"]) for h in call.result.data.get("hits", [])]
                for hit in call.result.data.get("hits", []):
                    read.setdefault(hit["id"], str(hit.get("snippet", "")))
        findings: list[Finding] = []
        for line in loop.text.splitlines():
            match = _FINDING.match(line)
            if not match:
                continue
            claim = strip_markers(match.group(1))
            ids = [i for i in re.findall(r"\[([^\]]+)\]", match.group(1)) for i in i.split(",")]
            cites = []
            for doc_id in (i.strip() for i in ids):
                if doc_id in read:  # cite only what the tools really returned
                    quote = (best_sentences(read[doc_id], claim, limit=1) or [read[doc_id][:300]])[0]
                    cites.append(Citation(doc_id=doc_id, quote=quote))
            if cites:
                findings.append(Finding(text=claim, citations=cites))
            else:
                job.warnings.append(
                    f"dropped a finding the model did not support with a document it read: {claim}"
                )
        texts = [read[doc] for doc in {c.doc_id for f in findings for c in f.citations}]
        return self.compose(
            job, queries, findings, texts, top_score=max(scores, default=0.0), engine=loop.model
        )

    def render(self, output: Any) -> str:
        if not output.covered:
            return str(output.result)
        sources = "\n".join(f"- {c.doc_id}: “{c.quote}”" for c in output.citations)
        return f"{output.result}\n\nSources:\n{sources}\n(confidence {output.confidence:.2f})"


def select(scored: list[tuple[float, int, str, str]], asked: list[str], max_docs: int) -> list[Finding]:
    """The findings to report, best answer first: each sentence once (the first document that holds it
    is cited, never two), from at most ``max_docs`` documents, without the sentences that score far below
    the best (neighbouring topics); for a comparison, the best sentences about each side."""
    best: dict[str, tuple[float, int, str, str]] = {}
    for item in scored:
        key = " ".join(item[3].split()).lower()
        if key not in best or (item[0], -item[1]) > (best[key][0], -best[key][1]):
            best[key] = item
    ordered = sorted(best.values(), key=lambda i: (-i[0], i[1]))
    if not ordered:
        return []
    floor = ordered[0][0] * KEEP
    ordered = [i for i in ordered if i[0] >= floor]
    picked: list[tuple[float, int, str, str]] = []
    if len(asked) >= 2:
        for topic in asked:
            home = relevance.topic_doc(topic)
            side = [i for i in ordered if i[2] == home and i not in picked]  # its own document first
            side += [i for i in ordered if relevance.names(i[3], topic) and i not in picked and i not in side]
            picked += side[:QUOTES_PER_SIDE]
    picked += [i for i in ordered if i not in picked][: max(0, QUOTES - len(picked))]
    docs: list[str] = []
    findings = []
    for _, _, doc_id, sentence in picked:
        if doc_id not in docs:
            if len(docs) >= max_docs:
                continue
            docs.append(doc_id)
        findings.append(Finding(text=sentence, citations=[Citation(doc_id=doc_id, quote=sentence)]))
    return findings


def search_queries(question: str) -> list[str]:
    """1-3 searches for ``question``: all its key terms, then the leading pairs when there are many."""
    words = key_terms(question) or terms(question)
    if not words:
        return []
    raw = [w for w in re.findall(r"[A-Za-z0-9_]+", question.lower()) if w.strip("_")]
    # search with the words as written (the server stems them itself), in question order
    keep = [w for w in dict.fromkeys(raw) if terms(w) and terms(w)[0] in words]
    queries = [" ".join(keep)]
    if len(keep) > 3:
        queries += [" ".join(keep[:2]), " ".join(keep[2:4])]
    return list(dict.fromkeys(queries))[:3]


def _unique(citations: list[Citation]) -> list[Citation]:
    seen: dict[tuple[str, str], Citation] = {}
    for c in citations:
        seen.setdefault((c.doc_id, c.quote), c)
    return list(seen.values())


def build(ctx: AgentContext) -> AgentExecutor:
    return Researcher(ctx)
