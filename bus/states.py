"""The A2A task states Podium tells apart: a task that has ended never changes again; one that is
interrupted waits for its caller (input or authentication) and goes on when answered."""

from __future__ import annotations

from a2a.types.a2a_pb2 import TaskState

TERMINAL: frozenset[int] = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_REJECTED,
    }
)
INTERRUPTED: frozenset[int] = frozenset(
    {TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED}
)
STOPPED: frozenset[int] = TERMINAL | INTERRUPTED  # a send without streaming returns at these
TERMINAL_NAMES: frozenset[str] = frozenset(TaskState.Name(s) for s in TERMINAL)  # "TASK_STATE_COMPLETED", …


def short_name(state: int) -> str:
    """``TASK_STATE_INPUT_REQUIRED`` -> ``input-required`` (``unknown`` for a value A2A does not define)."""
    try:
        name = TaskState.Name(state)
    except ValueError:
        return "unknown"
    return name.removeprefix("TASK_STATE_").lower().replace("_", "-")


TERMINAL_SHORT: frozenset[str] = frozenset(short_name(s) for s in TERMINAL)  # "completed", …

__all__ = ["INTERRUPTED", "STOPPED", "TERMINAL", "TERMINAL_NAMES", "TERMINAL_SHORT", "short_name"]
