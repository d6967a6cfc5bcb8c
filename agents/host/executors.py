"""Which module builds an agent's executor, and building it (see ``agents/host/sources.py`` for where an
agent comes from: Podium's own, an installed distribution, or a module named on the command line)."""

from __future__ import annotations

from a2a.server.agent_execution import AgentExecutor

from podium.agents.host.config import AgentConfigError
from podium.agents.host.context import AgentContext
from podium.agents.host.sources import BUILT_IN, AgentSourceError, describe_error, import_module, resolve
from podium.bus.errors import ConfigError

# agent name -> module with ``build(ctx: AgentContext) -> AgentExecutor`` (Podium's own agents)
EXECUTORS: dict[str, str] = BUILT_IN


def executor_module(name: str) -> str:
    """The module that builds agent ``name``'s executor: the one its config names (``"executor"``), an
    installed distribution's entry point, else Podium's own. Raises ``LookupError`` for an agent with
    none, ``AgentConfigError`` (``AgentSourceError``) for a bad config or installed agent."""
    return resolve(name).module


def load_executor(ctx: AgentContext) -> AgentExecutor:
    """Build the executor for ``ctx.name``. Raises ``LookupError`` for an agent with no executor, and
    ``AgentSourceError`` (one line naming the agent) when its module does not import or ``build`` raises."""
    source = resolve(ctx.name)
    module = import_module(source)
    try:
        executor = module.build(ctx)
    except (AgentConfigError, ConfigError, LookupError):  # already one line naming the setting
        raise
    except Exception as exc:  # whatever the agent's own build raises, in one line
        raise AgentSourceError(
            f"agent {ctx.name}: build(ctx) in {source.module} raised {describe_error(exc)}; fix build()"
        ) from exc
    if not isinstance(executor, AgentExecutor):
        raise AgentSourceError(
            f"agent {ctx.name}: build(ctx) in {source.module} returned {type(executor).__name__}, "
            "not an a2a AgentExecutor; return one"
        )
    return executor
