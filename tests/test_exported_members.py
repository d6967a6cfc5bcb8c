"""The public API (``podium.__all__``) is a chosen list: each name resolves, is documented, and is what the
docs promise; ``import podium`` loads nothing heavy. Adding or removing a name is a deliberate change here."""

from __future__ import annotations

import subprocess
import sys

import podium

PUBLIC = {
    "AgentContext", "ToolBox", "ToolSpec", "ToolResult", "NoTools", "MountError",
    "ProvidesRoutes", "RunsInBackground", "Closable",
    "Engine", "Message", "Completion", "TextBlock", "ToolCall", "ToolResultBlock", "Usage",
    "run_tool_loop", "LoopResult", "LLMError", "ScriptedEngine",
    "open_client", "ask", "task_text", "AgentNotFoundError",
    "Plan", "TaskStep", "RouteStep", "ParallelStep", "VoteStep", "LoopStep", "DynamicStep", "Call", "Gate",
    "parse_plan", "validate_plan", "PlanError",
    "connect", "Keys", "BusClient", "Registry",
    "AgentRuntime", "RuntimeConfig",
    "__version__",
}  # fmt: skip


def test_all_is_the_chosen_list() -> None:
    assert set(podium.__all__) == PUBLIC
    assert podium.__all__ == sorted(podium.__all__)
    assert set(podium.__all__) == {*podium._EXPORTS, "__version__"}


def test_every_exported_member_resolves_and_is_documented() -> None:
    for name in podium.__all__:
        if name == "__version__":
            continue
        member = getattr(podium, name)
        assert member.__module__.startswith("podium."), name
        assert (member.__doc__ or "").strip(), f"podium.{name} has no docstring of its own"


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        podium.NotAThing  # noqa: B018
    except AttributeError as exc:
        assert "NotAThing" in str(exc)
    else:
        raise AssertionError("podium.NotAThing resolved")


def test_import_podium_loads_nothing_heavy() -> None:
    code = "import sys, podium; print(','.join(m for m in ('a2a', 'redis', 'mcp', 'anthropic', 'podium.agents') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
