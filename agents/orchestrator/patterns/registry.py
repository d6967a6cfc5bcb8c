"""The pattern interface and the registry of patterns.

A pattern is one module under ``patterns/``: its step model (a :class:`StepBase` with
``pattern: Literal["<name>"]``), how many delegations a step may make (for the cost estimate), its own
checks of a plan, and how it runs given a :class:`~podium.agents.orchestrator.patterns.context.StepContext`.
:func:`register` adds one; the plan's step union, :func:`validate_plan`'s checks, the cost estimate and
the model planner's schema and prompt are all built from what is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from podium.agents.orchestrator.steps import StepBase

if TYPE_CHECKING:
    from podium.agents.orchestrator.patterns.context import StepContext
    from podium.agents.orchestrator.plan import Plan
    from podium.agents.orchestrator.results import StepResult


class Pattern:
    """One orchestration pattern. Subclasses set :attr:`name`, :attr:`step` and :attr:`summary` and
    implement :meth:`run`; the other hooks have defaults that fit a step making each of its calls once."""

    name: ClassVar[str]
    step: ClassVar[type[StepBase]]
    summary: ClassVar[str]  # what it does, in a few words, for the model planner's prompt
    locals: ClassVar[tuple[str, ...]] = ()  # "$names" its calls' inputs may use ("$gen", "$item")
    noun: ClassVar[str] = ""  # how errors name it ("a loop"): a local used elsewhere is "outside {noun}"
    joins: ClassVar[bool] = False  # True: it runs even when steps it waits for failed (it joins what came)

    def max_calls(self, step: Any) -> int:
        """The most delegations ``step`` may make (the cost estimate counts these)."""
        return len(step.calls())

    def check(self, step: Any, agents: set[str] | None) -> None:
        """Checks of ``step`` alone, against the agents registered. Raises ``PlanError``."""

    def check_in(self, step: Any, plan: Plan) -> None:
        """Checks of ``step`` within an acyclic ``plan``. Raises ``PlanError``."""

    async def run(self, step: Any, ctx: StepContext) -> StepResult:
        """Run ``step`` once. Raises ``StepFailed``, ``DelegationError``, ``BudgetExceeded``,
        ``LoopDetected``."""
        raise NotImplementedError


_PATTERNS: dict[str, Pattern] = {}
_LISTENERS: list[Callable[[], None]] = []


def register(pattern: Pattern) -> Pattern:
    """Make ``pattern`` available to plans (replacing a pattern of the same name). Returns it.

    Raises ``ValueError`` when its step model's ``pattern`` field is not the literal of its name."""
    field = pattern.step.model_fields.get("pattern")
    if field is None or field.default != pattern.name:
        raise ValueError(
            f"pattern {pattern.name!r}: its step model {pattern.step.__name__} needs "
            f'pattern: Literal["{pattern.name}"] = "{pattern.name}"'
        )
    _PATTERNS[pattern.name] = pattern
    for listener in list(_LISTENERS):
        listener()
    return pattern


def unregister(name: str) -> None:
    """Remove the pattern ``name`` (a no-op when there is none)."""
    if _PATTERNS.pop(name, None) is not None:
        for listener in list(_LISTENERS):
            listener()


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` whenever a pattern is registered or removed (the plan rebuilds its union)."""
    _LISTENERS.append(listener)


def get(name: str) -> Pattern:
    """The pattern ``name``. Raises ``KeyError``."""
    return _PATTERNS[name]


def of(step: Any) -> Pattern:
    """The pattern of ``step``. Raises ``KeyError``."""
    return _PATTERNS[step.pattern]


def patterns() -> list[Pattern]:
    """Every registered pattern, in registration order."""
    return list(_PATTERNS.values())


def names() -> tuple[str, ...]:
    return tuple(_PATTERNS)


def local_names() -> set[str]:
    return {name for p in _PATTERNS.values() for name in p.locals}
