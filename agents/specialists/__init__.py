"""The four specialist agents (researcher, analyst, writer, reviewer), each an a2a ``AgentExecutor``
built by its module's ``build(ctx)``, and the JSON shapes they accept and return.

Shared behaviour lives in :mod:`agents.specialists.base`; each module's docstring says what the
specialist does offline and with an engine.
"""

from podium.agents.specialists.analyst import Analyst
from podium.agents.specialists.base import Rejected, Specialist
from podium.agents.specialists.models import (
    AnalysisInput,
    AnalysisOutput,
    BlackboardSpec,
    Check,
    Citation,
    FeedbackItem,
    Finding,
    Note,
    ResearchInput,
    ResearchOutput,
    ReviewInput,
    ReviewOutput,
    SpecialistInput,
    SpecialistOutput,
    WriterInput,
    WriterOutput,
)
from podium.agents.specialists.researcher import Researcher
from podium.agents.specialists.reviewer import Reviewer
from podium.agents.specialists.writer import Writer

__all__ = [
    "AnalysisInput",
    "AnalysisOutput",
    "Analyst",
    "BlackboardSpec",
    "Check",
    "Citation",
    "FeedbackItem",
    "Finding",
    "Note",
    "Rejected",
    "ResearchInput",
    "ResearchOutput",
    "Researcher",
    "ReviewInput",
    "ReviewOutput",
    "Reviewer",
    "Specialist",
    "SpecialistInput",
    "SpecialistOutput",
    "Writer",
    "WriterInput",
    "WriterOutput",
]
