"""What an agent is given at start from its config and the environment: its mounted MCP tools, its model
engine (or None, offline), and the engines of its roles (the orchestrator's planner and synthesiser)."""

from __future__ import annotations

import logging
import os
from contextlib import AsyncExitStack
from typing import Any

from podium.agents.host.settings import RuntimeConfig
from podium.agents.host.tools import NoTools

logger = logging.getLogger("podium.agents.host.runtime")


async def mount_tools(stack: AsyncExitStack, name: str, redis: Any, cfg: RuntimeConfig) -> Any:
    """The agent's mounted MCP tools, per its config (none when it has no config); in-process and stdio
    servers share the agent's Redis and namespace. An agent that mounts nothing never loads the MCP SDK."""
    from podium.agents.host.config import load_config

    if not load_config(name).mcp:
        return NoTools()
    from podium.agents.host.mounting import mount_for_agent

    return await stack.enter_async_context(
        mount_for_agent(name, redis=redis, redis_url=cfg.redis_url, namespace=cfg.namespace)
    )


async def agent_engine(stack: AsyncExitStack, name: str | None = None) -> Any:
    """The agent's engine per its config's ``llm`` and the environment (PODIUM_LLM_PROVIDER,
    ANTHROPIC_API_KEY, OPENAI_BASE_URL...), else None (offline mode)."""
    from podium.agents.host.config import config_path, load_config
    from podium.agents.llm import engine_from_env

    llm = load_config(name).llm if name else None
    engine = engine_from_env(llm=llm, where=str(config_path(name)) if name else "agent config")
    if engine is not None:
        await stack.enter_async_context(engine)  # type: ignore[arg-type]
        logger.info("agent %s: model %s via %s", name, engine.model, engine.name)
    return engine


def check_llm(name: str) -> None:
    """A provider the environment names but cannot use fails at start, before any waiting for Redis."""
    from podium.agents.host.config import config_path, load_config
    from podium.agents.llm.settings import check

    check(load_config(name).llm, os.environ, str(config_path(name)))


async def role_engines(stack: AsyncExitStack, name: str, engine: Any) -> Any:
    """The engines of the agent's roles (the orchestrator's planner and synthesiser), built when used."""
    from podium.agents.host.config import config_path, load_config
    from podium.agents.llm.settings import RoleEngines

    engines = RoleEngines(engine, load_config(name).llm, os.environ, str(config_path(name)))
    stack.push_async_callback(engines.aclose)
    return engines
