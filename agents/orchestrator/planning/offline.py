"""The offline planner: a deterministic plan from the request and the registry's skills.

It splits the request into its parts (sentences, questions, "… and also …"), ranks the registry's
skills for each part with the registry's own text search, and builds per part: a computation → the
skill tagged for arithmetic, gated on a number; a documentation question → research (gated on the
sources covering it), then a write/review loop until the review passes; a part that an agent's skill
matches best by name (an outside agent, the echo agent) → that skill. Independent parts run as
parallel sections, joined before one synthesis. A part no skill fits goes to the default agent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from podium.agents.orchestrator.budget import Spending
from podium.agents.orchestrator.catalog import Catalog
from podium.agents.orchestrator.errors import PlanError
from podium.agents.orchestrator.patterns.context import Recorder
from podium.agents.orchestrator.plan import (
    Call,
    DynamicStep,
    Gate,
    LoopStep,
    ParallelStep,
    Plan,
    TaskStep,
    validate_plan,
)
from podium.agents.text import relevance
from podium.agents.text.routing import classify
from podium.agents.text.words import key_terms

ROLE_TAGS: dict[str, set[str]] = {
    "compute": {"math", "calculator", "arithmetic", "calculation", "calculate"},
    "research": {"research", "documentation"},
    "write": {"writing", "draft"},
    "review": {"review", "grading", "evaluation"},
}
# Words that only say how to answer ("cite the sections"): a part made of them modifies the one before.
_INSTRUCTION_WORDS = set(
    key_terms(
        "please cite citing citation citations source sources section sections reference references quote quotes "
        "explain describe summarise summarize summary reviewed review write brief briefly short detail details "
        "answer also include including show give list them it that this these those docs documentation"
    )
)
_SENTENCE = re.compile(r"(?<=[.?!])\s+(?=[A-Z0-9\"'(])")
_ALSO = re.compile(r"\s*(?:;|,\s*and also\b|\band also\b|,\s*also\b)\s*", re.I)
_AND_NEW = re.compile(
    r",?\s+and\s+(?=(?:what|how|why|when|where|which|who|compute|calculate|work out|"
    r"find|explain|describe|summari[sz]e|tell|give|list|estimate)\b)",
    re.I,
)
# "and is/are/does/do/can …" starts a new question only in a sentence that asks one ("… and is 7 prime?");
# in a statement it goes on describing the same thing ("a jacket costs 120 dollars and is 25% off.").
_AND_ASKS = re.compile(r",?\s+and\s+(?=(?:is|are|does|do|can)\b)", re.I)
# A sentence that asks or tells to do something; any other sentence states facts that the next part needs.
_ASKS = re.compile(
    r"^(?:please\s+)?(?:what|how|why|when|where|which|who|whose|whom|is|are|was|were|does|do|did|can|could|"
    r"should|would|will|compute|calculate|work|find|explain|describe|summari[sz]e|tell|give|list|estimate|"
    r"show|compare|write|draft|compose|review|revise|rewrite|edit|check|convert|define|cite|name|research|"
    r"look|search|and|also|then)\b",
    re.I,
)
# How to present the answer, which the researcher has no use for: "… and write a short summary",
# "Write a summary of …", "Summarise …".
_WRITE_TAIL = re.compile(
    r"(?:,\s*|\s+)(?:and\s+|then\s+|and then\s+)(?:please\s+)?(?:write|summari[sz]e|draft|compose)\b.*$", re.I
)
_WRITE_HEAD = re.compile(
    r"^(?:please\s+)?(?:(?:write|draft|compose)\s+(?:up\s+)?(?:an?\s+|the\s+|some\s+)?(?:[\w-]+\s+){0,3}?"
    r"(?:summary|notes?|paragraph|answer|explanation|overview|report|description)\s+(?:of|on|about|explaining)"
    r"|summari[sz]e)\s+",
    re.I,
)
MIN_OTHER_SCORE = 2.0  # a non-research skill must match a part at least this well to take it


@dataclass
class OfflinePlanner:
    default_agent: str = "researcher"
    max_rounds: int = 3
    name: str = "offline"

    async def plan(
        self,
        text: str,
        data: dict[str, Any],
        catalog: Catalog,
        *,
        spending: Spending | None = None,
        trace: Recorder | None = None,
    ) -> Plan:
        """A validated plan for ``text``. Raises ``PlanError`` when no alive agent can serve any part.
        It spends nothing and records nothing (``spending``/``trace`` are the :class:`Planner`'s)."""
        parts = split_request(text)
        if not parts:
            raise PlanError("the request is empty: ask a question or give a task")
        steps: list[Any] = []
        finals: list[str] = []
        gaps: list[str] = []
        notes: list[str] = []
        for index, part in enumerate(parts, 1):
            prefix = f"p{index}-" if len(parts) > 1 else ""
            built = await self._plan_part(part, data if len(parts) == 1 else {}, prefix, catalog)
            if built is None:
                gaps.append(part)
                continue
            part_steps, reason = built
            steps += part_steps
            finals.append(part_steps[-1].id)
            notes.append(f"part {index} ({_short(part)}): {reason}")
        if not steps:
            raise PlanError(
                "no alive agent can serve this request: "
                + (
                    f"no skill fits {', '.join(repr(_short(g)) for g in gaps)}"
                    if gaps
                    else "the registry is empty"
                )
                + "; start the specialists (podium up) or register an agent"
            )
        if len(finals) > 1:
            steps.append(ParallelStep(id="sections", title="join the independent parts", branches=finals))
        plan = Plan(steps=steps, answer=finals, gaps=gaps, planner=self.name, reason="; ".join(notes))
        return validate_plan(plan, catalog.skills(), catalog.agents())

    async def _plan_part(
        self, part: str, data: dict[str, Any], prefix: str, catalog: Catalog
    ) -> tuple[list[Any], str] | None:
        route = classify(part, data)
        roles = {role: catalog.tagged(tags) for role, tags in ROLE_TAGS.items()}
        ranked = await catalog.rank(part)
        role_skills = {s for skills in roles.values() for s in skills}
        # A word problem an outside agent's skill matches by name ("convert-units") is that agent's.
        outside_first = (
            route.computation is not None and route.computation.word and _outside_fits(ranked, role_skills)
        )
        if route.kind == "compute" and roles["compute"] and not outside_first:
            skill = roles["compute"][0]
            step = TaskStep(
                id=f"{prefix}compute",
                title=f"compute: {_short(part)}",
                part=part,
                call=Call(skill=skill, data=dict(data)),
                gate=Gate(check="number"),
            )
            return [step], f"a computation → {skill}"
        if (
            route.kind in ("review", "revise")
            and data
            and roles.get(route.kind if route.kind == "review" else "write")
        ):
            skill = (roles["review"] if route.kind == "review" else roles["write"])[0]
            step = TaskStep(
                id=f"{prefix}{route.kind}",
                title=_short(part),
                part=part,
                call=Call(skill=skill, data=dict(data)),
                gate=Gate(check="nonempty"),
            )
            return [step], f"a {route.kind} of the draft given → {skill}"
        best = ranked[0] if ranked else None
        research = roles["research"]
        # a question about a topic of the documentation ("the raise statement") is research, whatever else matches
        about_docs = bool(research) and bool(relevance.documented_topics(part))
        if (
            best is not None
            and best.skill not in role_skills
            and best.score >= MIN_OTHER_SCORE
            and not about_docs
        ):
            rival = next((m.score for m in ranked if m.skill in research), 0.0)
            if best.score > rival:
                step = TaskStep(
                    id=f"{prefix}{_slug(best.skill)}",
                    title=_short(part),
                    part=part,
                    call=Call(skill=best.skill, data=dict(data)),
                    gate=Gate(check="nonempty"),
                )
                return [
                    step
                ], f"best match by registry search: {best.entry.name}/{best.skill} (score {best.score:.2f})"
        if research:
            return self._research(
                part, prefix, research[0], roles
            ), "a documentation question → research, then write and review"
        fallback = self._default_skill(catalog)
        if fallback is None:
            return None
        step = TaskStep(
            id=f"{prefix}answer",
            title=_short(part),
            part=part,
            call=Call(skill=fallback[1], agent=fallback[0], data=dict(data)),
            gate=Gate(check="nonempty"),
        )
        return [step], f"no skill fits: the default agent {fallback[0]}"

    def _research(self, part: str, prefix: str, skill: str, roles: dict[str, list[str]]) -> list[Any]:
        question = research_question(part)
        research = TaskStep(
            id=f"{prefix}research",
            title=f"research: {_short(question)}",
            part=part,
            call=Call(skill=skill, text=question if question != part else None),
            gate=Gate(check="covered", max_attempts=1),
        )
        steps: list[Any] = [research]
        if roles["write"] and roles["review"]:
            steps.append(
                LoopStep(
                    id=f"{prefix}answer",
                    title=f"write and review: {_short(part)}",
                    part=part,
                    generator=Call(skill=roles["write"][0], inputs={"notes": f"{research.id}.findings"}),
                    evaluator=Call(
                        skill=roles["review"][0],
                        data={"question": question},
                        inputs={"draft": "$gen.result", "citations": "$gen.sources"},
                    ),
                    max_rounds=self.max_rounds,
                )
            )
        elif roles["write"]:
            steps.append(
                TaskStep(
                    id=f"{prefix}answer",
                    title=f"write: {_short(part)}",
                    part=part,
                    call=Call(skill=roles["write"][0], inputs={"notes": f"{research.id}.findings"}),
                    gate=Gate(check="cited"),
                )
            )
        return steps

    def _default_skill(self, catalog: Catalog) -> tuple[str, str] | None:
        entry = catalog.entry(self.default_agent)
        if entry is not None and entry.card.skills:
            return entry.name, entry.card.skills[0].id
        return None

    async def expand(self, step: DynamicStep, items: list[Any], request: str) -> list[Any]:
        """One worker per item, from the step's template (its text may use ``{item}``/``{index}``)."""
        return [step.worker for _ in items]


def split_request(text: str) -> list[str]:
    """The independent parts of a request, in order: sentences and questions, split again at
    "; ", "and also" and "and" + a new question; a part that only says how to answer ("Cite the
    sections.") joins the part before it."""
    text = " ".join(text.split())
    if not text:
        return []
    pieces: list[str] = []
    for sentence in _SENTENCE.split(text):
        for chunk in _ALSO.split(sentence):
            for piece in _AND_NEW.split(chunk):
                pieces += _AND_ASKS.split(piece) if piece.rstrip().endswith("?") else [piece]
    parts: list[str] = []
    context = ""  # statements waiting for the part that asks about them
    for piece in (p.strip(" ,;") for p in pieces):
        if not piece:
            continue
        content = [t for t in key_terms(piece) if t not in _INSTRUCTION_WORDS] + re.findall(r"\d", piece)
        if parts and not context and (not content or len(piece.split()) < 3):
            parts[-1] = _join(parts[-1], piece)
        elif not _ASKS.match(piece) and not piece.endswith("?"):
            context = _join(context, piece) if context else piece
        else:
            parts.append(_join(context, piece) if context else piece)
            context = ""
    if context:  # nothing asked after the statements: they are the request
        parts.append(context)
    return parts


def _join(first: str, then: str) -> str:
    return f"{first.rstrip('.')}. {then}" if first[-1:] not in ".?!" else f"{first} {then}"


def research_question(part: str) -> str:
    """``part`` without how to present the answer ("… and write a short summary", "Summarise …"): what
    the researcher is asked. The whole part still goes to the writer."""
    question = _WRITE_TAIL.sub("", part).strip(" ,;")
    question = _WRITE_HEAD.sub("", question).strip(" ,;")
    if len(key_terms(question)) < 1 or classify(question).kind != "research":
        return part
    return question[:1].upper() + question[1:]


def _outside_fits(ranked: list[Any], role_skills: set[str]) -> bool:
    best = ranked[0] if ranked else None
    return best is not None and best.skill not in role_skills and best.score >= MIN_OTHER_SCORE


def _short(text: str, limit: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _slug(skill: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", skill).strip("-") or "step"
    return slug if slug[0].isalpha() else f"s-{slug}"
