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
        best = [h for h in ranked if h["score"] >= MIN_SCORE][: job.input.max_sources]
        findings: list[Finding] = []
        texts: list[str] = []
        for hit in best:
            text = await self.read(job, hit["id"])
            texts.append(text)
            quotes = best_sentences(text, question, limit=2) if text else []
            if not quotes:
                continue
            for quote in quotes:
                cite = Citation(doc_id=hit["id"], quote=quote)
                same = next((f for f in findings if f.text == quote), None)
                if same is None:
                    findings.append(Finding(text=quote, citations=[cite]))
                else:  # the same passage in another document: one finding, both sources
                    same.citations.append(cite)
        return self.compose(job, queries, findings, texts, top_score=best[0]["score"] if best else 0.0)

    async def read(self, job: Job, doc_id: str) -> str:
        result = await job.tools.call("docs__read", {"id": doc_id, "length": READ_CHARS})
        if result.is_error or not isinstance(result.data, dict):
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
        wanted = key_terms(question) or terms(question)
        coverage = overlap(wanted, quoted)
        best = max((overlap(wanted, c.quote) for c in citations), default=0.0)
        if best <= RELEVANT:
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
