"""The reviewer: grades a cited draft and returns a verdict (``pass`` or ``revise``) with one
actionable feedback item per problem.

The objective checks (:mod:`agents.specialists.checks`: citations, coverage, length, numbers,
arithmetic via the calc server; :mod:`agents.specialists.answer_checks`: the form asked, both sides of a
comparison, on topic, distinct sentences and sources) run first and alone decide a fail. Offline they are the whole review.
With an engine the model's judgement is added on top: it sees the draft and the checks' results and
may ask for a revision with its own feedback (check ``model``), but it cannot pass a draft a check
failed.
"""

from __future__ import annotations

import re
from typing import Any

from a2a.server.agent_execution import AgentExecutor

from podium.agents.host.context import AgentContext
from podium.agents.llm import run_tool_loop
from podium.agents.specialists import answer_checks, checks
from podium.agents.specialists.base import Job, Rejected, Specialist, board_json
from podium.agents.specialists.models import Check, Citation, FeedbackItem, ReviewInput, ReviewOutput
from podium.agents.text import drafts, forms
from podium.agents.text.routing import misrouted

SYSTEM = """You are the reviewer of a multi-agent team. Judge whether the draft answers the question \
accurately and clearly, given its sources and the results of the automatic checks. You may verify \
numbers with the calc tools. Reply with a first line "VERDICT: pass" or "VERDICT: revise", then one \
line per problem the writer should fix: "- <actionable feedback>"."""

_DRAFT_IN_TEXT = re.compile(r"\bdraft\s*:\s*(.+)", re.I | re.S)
_VERDICT = re.compile(r"VERDICT:\s*(pass|revise)", re.I)


class Reviewer(Specialist):
    name = "reviewer"
    skill = "review"
    input_model = ReviewInput
    engine_tools = ("calc__",)

    def material(self, job: Job) -> tuple[drafts.Draft, str, list[Citation]]:
        """The draft (from the data part, a blackboard note or the text after "Draft:"), the question
        (only when given explicitly) and the sources. Raises ``Rejected`` when there is no draft."""
        spec: ReviewInput = job.input
        text, citations = spec.draft, list(spec.citations)
        for item in board_json(job):
            if not text and item.get("agent") == "writer" and item.get("result"):
                text = str(item["result"])
                citations = citations or [Citation.model_validate(c) for c in item.get("citations", [])]
        if not text:
            inline = _DRAFT_IN_TEXT.search(job.text)
            text = inline.group(1).strip() if inline else ""
        if not text:
            if job.route.kind == "review":
                raise Rejected("there is no draft to review: give it in the data part's 'draft' field")
            raise Rejected(misrouted(job.route, self.name), job.route.agent)
        draft = drafts.parse(text)
        if not draft.sources:
            draft.sources = [drafts.SourceRef(i, c.doc_id, c.quote) for i, c in enumerate(citations, 1)]
        question = spec.question if "question" in job.data else ""
        return draft, question, citations

    async def run_checks(self, job: Job, draft: drafts.Draft, question: str) -> list[checks.Outcome]:
        spec: ReviewInput = job.input
        quotes = " ".join(s.quote for s in draft.sources)
        # an answer asked to be one or two sentences long is short by request
        low = 0 if forms.form(question).max_sentences else spec.min_words
        return [
            checks.citations(draft),
            checks.coverage(draft, question),
            checks.length(draft, low, spec.max_words),
            checks.numbers(draft, quotes),
            await checks.arithmetic(draft, job.tools),
            answer_checks.form(draft, question),
            answer_checks.sides(draft, question),
            answer_checks.on_topic(draft, question),
            answer_checks.distinct(draft),
        ]

    async def offline(self, job: Job) -> ReviewOutput:
        draft, question, _ = self.material(job)
        outcomes = await self.run_checks(job, draft, question)
        return self.verdict(job, draft, outcomes)

    def verdict(
        self, job: Job, draft: drafts.Draft, outcomes: list[checks.Outcome], *, model: str = "offline",
        opinion: tuple[bool, list[str]] | None = None,
    ) -> ReviewOutput:  # fmt: skip
        found = [o.check for o in outcomes]
        feedback = [f for o in outcomes for f in o.feedback]
        failed = [c.name for c in found if not c.passed]
        confidence = 0.9 if failed else 0.75
        if opinion is not None:
            agrees, points = opinion
            found.append(
                Check(
                    name="model",
                    passed=agrees,
                    detail="the model's judgement: " + ("pass" if agrees else "revise"),
                )
            )
            if not agrees:
                feedback += [FeedbackItem(check="model", message=p) for p in points] or [
                    FeedbackItem(check="model", message="the model judged the draft in need of revision")
                ]
            confidence = (0.95 if not agrees else 0.7) if failed else (0.9 if agrees else 0.7)
        verdict = "pass" if all(c.passed for c in found) else "revise"
        summary = (
            "passes every check"
            if verdict == "pass"
            else f"needs revision ({', '.join(c.name for c in found if not c.passed)})"
        )
        return self.output(
            job,
            ReviewOutput,
            result=f"The draft {summary}.",
            citations=[Citation(doc_id=s.doc_id, quote=s.quote) for s in draft.sources],
            confidence=confidence,
            engine=model,
            verdict=verdict,
            checks=found,
            feedback=feedback,
        )

    async def with_engine(self, job: Job) -> ReviewOutput:
        draft, question, _ = self.material(job)
        outcomes = await self.run_checks(job, draft, question)
        results = "\n".join(
            f"- {o.check.name}: {'passed' if o.check.passed else 'FAILED'} ({o.check.detail})"
            for o in outcomes
        )
        sources = "\n".join(f"[{s.marker}] {s.doc_id}: {s.quote}" for s in draft.sources)
        prompt = f"Question: {question or '(not given)'}\n\nDraft:\n{draft.render()}\n\nSources:\n{sources}\n\nChecks:\n{results}"
        loop = job.spent(
            await run_tool_loop(
                self.engine,
                system=SYSTEM,
                prompt=prompt,
                tools=job.tools.only(self.engine_tools),
                token_budget=job.token_budget,
            )
        )
        said = _VERDICT.search(loop.text)
        agrees = said is not None and said.group(1).lower() == "pass"
        points = [line.strip()[1:].strip() for line in loop.text.splitlines() if line.strip().startswith("-")]
        return self.verdict(job, draft, outcomes, model=loop.model, opinion=(agrees, points))

    def render(self, output: Any) -> str:
        lines = [f"Verdict: {output.verdict.upper()} (confidence {output.confidence:.2f})"]
        lines += [f"  {'✓' if c.passed else '✗'} {c.name}: {c.detail}" for c in output.checks]
        if output.feedback:
            lines.append("Feedback:")
            lines += [f"  - [{f.check}] {f.message}" for f in output.feedback]
        return "\n".join(lines)


def build(ctx: AgentContext) -> AgentExecutor:
    return Reviewer(ctx)
