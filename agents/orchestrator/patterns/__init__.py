"""The orchestration patterns a plan step can have, one module each, and their registry.

Built in: ``task`` (one delegation), ``route`` (pick a skill by the input, with a default),
``parallel`` (join independent branches), ``vote`` (the same call n times or on n agents, with a
quorum), ``loop`` (generator and evaluator, at most k rounds) and ``dynamic`` (workers created at run
time from an earlier step's list). A new pattern is one module defining its step model and a
:class:`Pattern`, passed to :func:`register` (see ``docs/orchestrator.md``, "Adding a pattern").
"""

from __future__ import annotations

from podium.agents.orchestrator.patterns import dynamic, loop, parallel, route, task, vote
from podium.agents.orchestrator.patterns.context import Expander, StepContext, as_text
from podium.agents.orchestrator.patterns.registry import (
    Pattern,
    get,
    names,
    of,
    patterns,
    register,
    unregister,
)

for _module in (task, route, parallel, vote, loop, dynamic):
    register(_module.PATTERN)

__all__ = [
    "Expander",
    "Pattern",
    "StepContext",
    "as_text",
    "get",
    "names",
    "of",
    "patterns",
    "register",
    "unregister",
]
