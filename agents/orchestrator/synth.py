"""Synthesis: one answer to the original request from the workers' structured outputs.

Sources are reconciled into one numbered list (the same document and quote is one source, whoever cited
it) and every section's citation markers are renumbered to it; the analyst's figures are reported as
the calculator gave them; disagreements (a split vote, a review that found numbers contradicting the
sources) and gaps (a part nobody could answer, a review that never passed) are named, not hidden.
:class:`ModelSynthesiser` (in :mod:`agents.orchestrator.model`) writes the prose with Claude from the
same material and falls back to this one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from podium.agents.orchestrator.plan import Plan
from podium.agents.orchestrator.results import StepResult
from podium.agents.text.drafts import SOURCES_HEADING

_MARKER = re.compile(r"\[(\d+)\]")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


@dataclass
class Section:
    step: str
    part: str
    text: str  # markers already renumbered to the answer's sources
    figures: list[str] = field(default_factory=list)  # numbers to report exactly
    agents: list[str] = field(default_factory=list)


@dataclass
class Material:
    """What synthesis works from: sections, sources, gaps and contradictions, already reconciled."""

    request: str
    sections: list[Section] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)  # {"marker", "docId", "quote"}
    gaps: list[str] = field(default_factory=list)
    contradictions: list[str] = field(default_factory=list)

    def source(self, doc_id: str, quote: str) -> int:
        """The answer's marker for this source, adding it when new."""
        for s in self.sources:
            if s["docId"] == doc_id and s["quote"] == quote:
                return int(s["marker"])
        marker = len(self.sources) + 1
        self.sources.append({"marker": marker, "docId": doc_id, "quote": quote})
        return marker


@dataclass
class Answer:
    text: str
    material: Material
    synthesiser: str = "offline"
    warnings: list[str] = field(default_factory=list)

    def data(self, plan: Plan | None, results: dict[str, StepResult]) -> dict[str, Any]:
        """The answer's data part: answer, sources, steps and who did them, gaps, contradictions."""
        steps = [
            {
                "id": r.step,
                "status": r.status,
                "agent": r.agent,
                "agents": r.agents,
                "binding": r.binding,
                "durationMs": r.duration_ms,
                "attempts": r.attempts,
                **({"error": r.error} if r.error else {}),
            }
            for r in sorted(results.values(), key=lambda r: r.started)
        ]
        return {
            "answer": self.text,
            "sources": self.material.sources,
            "steps": steps,
            "gaps": self.material.gaps,
            "contradictions": self.material.contradictions,
            "partial": bool(self.material.gaps),
            "planner": plan.planner if plan else None,
            "synthesiser": self.synthesiser,
            "warnings": self.warnings,
        }


def gather(request: str, plan: Plan, results: dict[str, StepResult], stopped: str | None = None) -> Material:
    """Reconcile the answer steps' outputs into sections, one source list, gaps and contradictions."""
    material = Material(request=request)
    for gap in plan.gaps:
        material.gaps.append(f"no agent could take on: {gap}")
    shown: set[str] = set()

    def show(step_id: str, part: str) -> None:
        result = results[step_id]
        shown.add(step_id)
        section = _section(material, step_id, part, result)
        if section.text:
            material.sections.append(section)
        _contradictions(material, step_id, result)

    def nearest_done(step_id: str) -> list[str]:
        """The finished steps closest upstream of ``step_id``: what a failed step would have built on."""
        found: list[str] = []
        for dep in plan.deps(plan.step(step_id)):
            dep_result = results.get(dep)
            if dep_result is not None and dep_result.ok:
                found.append(dep)
            else:
                found += nearest_done(dep)
        return found

    for step_id in plan.answer_steps():
        step = plan.step(step_id)
        part = step.part or step.title or step_id
        result = results.get(step_id)
        if result is not None and result.ok:
            show(step_id, part)
            continue
        material.gaps.append(_gap(part, step_id, result, results, plan))
        for done in nearest_done(step_id):  # a partial answer: what the failed step would have built on
            if done not in shown:
                show(done, part)
    if stopped:
        material.gaps.append(f"the run stopped early: {stopped}")
    return material


def offline_answer(material: Material) -> Answer:
    """The answer assembled from the sections: each part's answer as a paragraph, then what is
    missing or in conflict, then the sources."""
    paragraphs = [s.text.strip() for s in material.sections if s.text.strip()]
    text = "\n\n".join(paragraphs) or "I could not answer this request."
    return Answer(text=f"{text}\n\n{appendix(material)}".strip(), material=material)


def appendix(material: Material) -> str:
    """What follows the answer's prose: conflicts between workers, parts not answered, the sources."""
    blocks = []
    if material.contradictions:
        blocks.append(
            "Conflicts between the workers:\n" + "\n".join(f"- {c}" for c in material.contradictions)
        )
    if material.gaps:
        blocks.append("Not answered:\n" + "\n".join(f"- {g}" for g in material.gaps))
    if material.sources:
        blocks.append("Sources:\n" + "\n".join(_source_line(s) for s in material.sources))
    return "\n\n".join(blocks)


def _source_line(source: dict[str, Any]) -> str:
    quote = f" — “{source['quote']}”" if source.get("quote") else ""
    return f"[{source['marker']}] {source['docId']}{quote}"


def _section(material: Material, step_id: str, part: str, result: StepResult) -> Section:
    out = result.output
    agents = result.agents or ([result.agent] if result.agent else [])
    if "workers" in out:
        texts = []
        for worker in out.get("workers") or []:
            if "output" in worker:
                inner = StepResult(
                    step=step_id,
                    status="completed",
                    output=worker["output"],
                    text=str(worker["output"].get("result", "")),
                )
                texts.append(_section(material, step_id, part, inner).text)
        return Section(step_id, part, "\n\n".join(t for t in texts if t), agents=agents)
    if out.get("sources") and isinstance(out.get("sources"), list):
        body = SOURCES_HEADING.split(str(out.get("result") or result.text))[0].strip()
        mapping = {}
        for source in out["sources"]:
            if isinstance(source, dict):
                doc = str(source.get("docId") or source.get("doc_id") or "")
                mapping[_marker_key(source.get("marker"))] = material.source(
                    doc, str(source.get("quote") or "")
                )
        text = _MARKER.sub(lambda m: f"[{mapping.get(m.group(1), m.group(1))}]", body)
        if out.get("accepted") is False:
            material.gaps.append(_unaccepted(part, out))
        return Section(step_id, part, text, agents=agents)
    if out.get("findings") and isinstance(out.get("findings"), list):
        lines = []
        for finding in out["findings"]:
            marks = "".join(
                f"[{material.source(str(c.get('docId') or c.get('doc_id')), str(c.get('quote') or ''))}]"
                for c in finding.get("citations") or []
                if isinstance(c, dict)
            )
            lines.append(f"{str(finding.get('text', '')).strip()} {marks}".strip())
        return Section(step_id, part, " ".join(lines), agents=agents)
    if "operation" in out or ("value" in out and "steps" in out):
        tool = str(out.get("tool") or "calc").removeprefix("calc__")
        steps = [str(s) for s in out.get("steps") or []]
        marker = material.source(f"calc:{tool}", "; ".join(steps[:4]) or str(out.get("result", "")))
        sentence = str(out.get("result") or result.text).strip()
        sentence = sentence if sentence.endswith((".", "!", "?")) else sentence + "."
        given = {n.rstrip(",") for n in _NUMBER.findall(material.request)}
        figures = [
            n for n in dict.fromkeys(m.rstrip(",") for m in _NUMBER.findall(sentence)) if n not in given
        ]
        return Section(
            step_id, part, f"{sentence[:-1]} [{marker}]{sentence[-1]}", figures=figures, agents=agents
        )
    return Section(step_id, part, str(out.get("result") or result.text).strip(), agents=agents)


def _contradictions(material: Material, step_id: str, result: StepResult) -> None:
    out = result.output
    dissent = out.get("dissent") or []
    if dissent:
        winner = out.get("tally") or {}
        agreed = max(winner.values()) if winner else 0
        others = ", ".join(
            f"voter {d.get('voter')} ({d.get('agent') or 'agent'}) answered {_show(d.get('answer'))}"
            for d in dissent
        )
        material.contradictions.append(
            f"{step_id}: {agreed} of {len(out.get('votes') or [])} voters agreed on the answer given; {others}"
        )
    review = out.get("review") or {}
    for check in review.get("checks") or []:
        if isinstance(check, dict) and check.get("name") == "numbers" and not check.get("passed"):
            material.contradictions.append(
                f"{step_id}: the reviewer found numbers that disagree with the sources: {check.get('detail')}"
            )


def _gap(
    part: str, step_id: str, result: StepResult | None, results: dict[str, StepResult], plan: Plan
) -> str:
    if result is None:
        return f"{part}: not reached ({step_id} did not run)"
    # a skipped step names the failure that caused it, from the step it needed
    if result.status == "skipped":
        for dep in plan.deps(plan.step(step_id)):
            failed = results.get(dep)
            if failed is not None and not failed.ok:
                return _gap(part, dep, failed, results, plan)
    covered = result.output.get("covered")
    if covered is False:
        return f"{part}: {str(result.output.get('result') or 'the documentation does not cover it').strip()}"
    return f"{part}: {result.error or 'the step failed'}"


def _unaccepted(part: str, out: dict[str, Any]) -> str:
    rounds = out.get("rounds") or []
    last = rounds[-1] if rounds else {}
    feedback = "; ".join(last.get("feedback") or []) or last.get("reason", "")
    return f"{part}: the reviewer still asked for changes after {len(rounds)} round(s): {feedback}"


def _show(value: Any) -> str:
    """An answer as a person reads it: 37.0 is 37."""
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return str(value) if isinstance(value, int | float) else repr(value)


def _marker_key(marker: Any) -> str:
    """A source's marker as the text writes it: data parts carry every number as a float (``1.0``)."""
    if isinstance(marker, float) and marker.is_integer():
        return str(int(marker))
    return str(marker)
