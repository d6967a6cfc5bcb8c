"""The writer: turns cited notes into one answer that keeps every citation, and revises a draft from
a reviewer's feedback, saying how it handled each point.

Notes come from the data part (``notes``), from blackboard notes it is told to read (a researcher's
``findings``, an analyst's result), or from ``- claim [doc id]`` lines in the message text. Offline,
each note becomes a sentence carrying ``[n]`` markers, sentences citing the same source share a
paragraph, and a sources list maps each marker to its document id and quote. A revision applies each
feedback point mechanically (:mod:`agents.specialists.revision`). With an engine the model writes or
revises the prose from the same numbered sources; markers it invents are dropped, and a text that
lost every citation is replaced by the offline one.
"""

from __future__ import annotations

import re
from typing import Any

from a2a.server.agent_execution import AgentExecutor

from podium.agents.host.context import AgentContext
from podium.agents.llm import run_tool_loop
from podium.agents.specialists.base import Job, Rejected, Specialist, board_json
from podium.agents.specialists.models import Change, Citation, Note, Source, WriterInput, WriterOutput
from podium.agents.specialists.revision import revise
from podium.agents.text import drafts, forms, relevance
from podium.agents.text.routing import misrouted
from podium.agents.text.words import key_terms, markers, overlap, sentences, strip_markers, word_count

PARAGRAPH = 4  # sentences
SIDE = 2  # sentences about each side of a comparison
_NOTE_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.+?)\s*$")

SYSTEM = """You are the writer of a multi-agent team. Write a clear answer to the question using only \
the numbered notes given. Every sentence that states a fact must end with the marker(s) of the \
source(s) it comes from, like [1] or [1][2], using only the numbers given. Keep every number exactly as \
the notes give it. Do not add a sources list: it is added for you."""

REVISE = """Revise the draft below to address every feedback point, keeping what is already correct and \
the citation markers. After the revised text, write a line "CHANGES:" and then one line per feedback \
point: "- <feedback> => <what you changed>"."""


class Writer(Specialist):
    name = "writer"
    skill = "write"
    input_model = WriterInput

    def notes(self, job: Job) -> list[Note]:
        """Every note given: the data part's, the blackboard's, and ``- claim [id]`` lines of the text."""
        notes = list(job.input.notes)
        for item in board_json(job):
            for finding in item.get("findings") or []:
                notes.append(Note.model_validate(finding))
            if item.get("agent") == "analyst" and item.get("result"):
                cite = Citation(
                    doc_id=f"calc:{str(item.get('tool', '')).removeprefix('calc__')}", quote=item["result"]
                )
                notes.append(Note(text=item["result"], citations=[cite]))
        if not notes:
            for line in job.text.splitlines():
                match = _NOTE_LINE.match(line)
                if match:
                    ids = [i.strip() for i in markers(match.group(1))]
                    notes.append(
                        Note(text=strip_markers(match.group(1)), citations=[Citation(doc_id=i) for i in ids])
                    )
        return _dedupe(notes)

    def check(self, job: Job, notes: list[Note]) -> None:
        if job.route.kind == "creative":
            raise Rejected(misrouted(job.route, self.name), None)
        if job.input.draft and not job.input.feedback:
            raise Rejected(
                "there is a draft but no feedback to revise it by; the reviewer agent reviews drafts",
                "reviewer",
            )
        if not notes and not job.input.draft:
            if job.route.kind in ("write", "revise", "research"):
                raise Rejected(
                    "there is nothing to write from: give notes (data part 'notes'), a blackboard note of "
                    "findings to read, or a draft with feedback; the researcher agent gathers cited findings",
                    "researcher",
                )
            raise Rejected(misrouted(job.route, self.name), job.route.agent)

    async def offline(self, job: Job) -> WriterOutput:
        notes = self.notes(job)
        self.check(job, notes)
        if job.input.draft:
            draft = drafts.parse(job.input.draft)
            _adopt(draft, job.input.citations)
            changes = revise(draft, job.input.feedback, notes, job.question)
            return self.finish(job, draft, notes, changes=changes)
        return self.finish(job, self.compose(job, notes), notes)

    def compose(self, job: Job, notes: list[Note]) -> drafts.Draft:
        """A new draft from ``notes`` in the form the question asks (:mod:`agents.text.forms`): the notes'
        order is kept (the researcher puts the answering sentence first); a comparison puts each side's
        notes side by side and drops notes about neither; a list has one item a note; a length asked for
        ("in two sentences", "briefly") keeps that many sentences."""
        shape = forms.form(job.question)
        draft = drafts.Draft([])
        picked: list[tuple[Note, str]] = []
        for note in notes:
            if not note.citations:
                job.warnings.append(f"note without a citation kept uncited: {note.text[:80]}")
            picked += [(note, sentence) for sentence in sentences(strip_markers(note.text))]
        if shape.kind == "compare":
            draft.paragraphs = self._sides(draft, picked, shape)
        else:
            if shape.max_sentences:
                picked = picked[: shape.max_sentences]
            lines = [(note, self._cited(draft, note, sentence)) for note, sentence in picked]
            if shape.kind == "list":
                draft.paragraphs = [[f"- {line}"] for _, line in lines]
            else:
                draft.paragraphs = _paragraphs(lines)
        limit = job.input.max_words
        if limit:
            wanted = key_terms(job.question)
            while word_count(draft.body) > limit and len(draft.sentences) > 1:
                worst = min(reversed(draft.sentences), key=lambda s: overlap(wanted, s))
                draft.replace(worst, None)
            draft.paragraphs = [p for p in draft.paragraphs if p]
        return draft

    def _cited(self, draft: drafts.Draft, note: Note, sentence: str) -> str:
        numbers = [draft.marker_for(c.doc_id, c.quote) for c in note.citations]
        sentence = sentence[:-1] + "." if sentence.endswith(":") else sentence  # it introduced a grammar rule
        return drafts.cite(sentence, numbers) if numbers else sentence

    def _sides(
        self, draft: drafts.Draft, picked: list[tuple[Note, str]], shape: forms.Form
    ) -> list[list[str]]:
        """One paragraph a side of the comparison, led by its name: what the sources say about each."""
        paragraphs = []
        for side in shape.sides:
            home = relevance.topic_doc(side)
            about = [
                (n, s) for n, s in picked
                if any(c.doc_id == home for c in n.citations) or relevance.names(s, side)
            ][:SIDE]  # fmt: skip
            if about:
                lines = [self._cited(draft, n, s) for n, s in about]
                lines[0] = f"- {side}: {lines[0]}"
                paragraphs.append(lines)
        return paragraphs

    def finish(
        self,
        job: Job,
        draft: drafts.Draft,
        notes: list[Note],
        *,
        changes: list[Change] | None = None,
        engine: str = "offline",
    ) -> WriterOutput:
        used = {m for s in draft.sentences for m in markers(s)}
        sources = [
            Source(marker=s.marker, doc_id=s.doc_id, quote=s.quote)
            for s in draft.sources
            if str(s.marker) in used
        ]
        claims = [s for s in draft.sentences if drafts.is_claim(s)]
        cited = [s for s in claims if markers(s)]
        share = len(cited) / len(claims) if claims else 0.0
        addressed = [c.addressed for c in changes or []]
        done = sum(addressed) / len(addressed) if addressed else 1.0
        return self.output(
            job,
            WriterOutput,
            skill="revise" if changes is not None else "write",
            result=draft.render(),
            citations=[Citation(doc_id=s.doc_id, quote=s.quote) for s in sources],
            confidence=round(0.9 * share * done, 3),
            engine=engine,
            sources=sources,
            revision=changes is not None,
            changes=changes or [],
        )

    async def with_engine(self, job: Job) -> WriterOutput:
        notes = self.notes(job)
        self.check(job, notes)
        draft = drafts.parse(job.input.draft) if job.input.draft else drafts.Draft([])
        _adopt(draft, job.input.citations)
        lines = []
        for note in notes:
            numbers = [draft.marker_for(c.doc_id, c.quote) for c in note.citations]
            lines.append(f"- {note.text} " + "".join(f"[{n}]" for n in numbers))
        sources = "\n".join(f"[{s.marker}] {s.doc_id}: {s.quote}" for s in draft.sources)
        prompt = f"Question: {job.question}\n\nSources:\n{sources}\n\nNotes:\n" + "\n".join(lines)
        system = SYSTEM
        if job.input.draft:
            feedback = "\n".join(f"- ({f.check}) {f.message}" for f in job.input.feedback)
            prompt += f"\n\nDraft:\n{draft.body}\n\nFeedback:\n{feedback}"
            system += "\n\n" + REVISE
        loop = job.spent(
            await run_tool_loop(
                self.engine, system=system, prompt=prompt, max_turns=1, token_budget=job.token_budget
            )
        )
        text, _, tail = loop.text.partition("CHANGES:")
        text = drafts.SOURCES_HEADING.split(text)[0].strip()
        written = drafts.parse(text)
        written.sources = draft.sources
        known = {str(s.marker) for s in draft.sources}
        for sentence in written.sentences:
            bad = [m for m in markers(sentence) if m not in known]
            if bad:
                fixed = re.sub(r"\[(" + "|".join(map(re.escape, bad)) + r")\]", "", sentence).replace(
                    " .", "."
                )
                written.replace(sentence, fixed)
                job.warnings.append(f"dropped citation marker(s) {bad} the model made up")
        if known and not any(markers(s) for s in written.sentences):
            job.warnings.append("the model's text lost every citation; used the offline text")
            return await self.offline(job)
        changes = None
        if job.input.draft:
            changes = [_change(line) for line in tail.splitlines() if line.strip().startswith("-")]
            # every feedback point is accounted for, even when the model did not say what it did
            changes = changes or [
                Change(feedback=f.message, change="not described by the model", addressed=False)
                for f in job.input.feedback
            ]
        return self.finish(job, written, notes, changes=changes, engine=loop.model)

    def render(self, output: Any) -> str:
        if not output.revision:
            return str(output.result)
        handled = "\n".join(f"- {c.feedback} → {c.change}" for c in output.changes)
        return f"{output.result}\n\nChanges:\n{handled}"


def _adopt(draft: drafts.Draft, citations: list[Citation]) -> None:
    """A draft without a sources list cites ``citations`` by position."""
    if not draft.sources:
        draft.sources = [drafts.SourceRef(i, c.doc_id, c.quote) for i, c in enumerate(citations, 1)]


def _change(line: str) -> Change:
    feedback, _, change = line.strip().lstrip("-").partition("=>")
    return Change(
        feedback=feedback.strip(),
        change=change.strip() or "(no change described)",
        addressed=bool(change.strip()),
    )


def _paragraphs(lines: list[tuple[Note, str]]) -> list[list[str]]:
    """Sentences in order, a new paragraph where the source changes or one grows past PARAGRAPH."""
    paragraphs: list[list[str]] = []
    last = None
    for note, line in lines:
        key = note.citations[0].doc_id if note.citations else ""
        if not paragraphs or key != last or len(paragraphs[-1]) >= PARAGRAPH:
            paragraphs.append([])
        paragraphs[-1].append(line)
        last = key
    return paragraphs


def _dedupe(notes: list[Note]) -> list[Note]:
    kept: list[Note] = []
    for note in notes:
        words = set(key_terms(note.text))
        same = next(
            (k for k in kept if words and len(words & set(key_terms(k.text))) / len(words) > 0.9), None
        )
        if same is None:
            kept.append(note)
        elif " ".join(note.text.split()) != " ".join(same.text.split()):
            # the same statement in other words from another source: both sources on one sentence
            same.citations.extend(c for c in note.citations if c not in same.citations)
        # the very same sentence in a second document is cited once: one quote, one source
    return kept


def build(ctx: AgentContext) -> AgentExecutor:
    return Writer(ctx)
