"""An agent process loads only what it uses: no embedded bus (fakeredis, lupa) with a real Redis, no Claude
client (anthropic) without a key, no MCP SDK for an agent that mounts no tools, no card signing (PyJWT)
without a signing key."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import ROOT

HEAVY = ("fakeredis", "lupa", "anthropic", "mcp", "jwt")
# What `podium agent echo` imports and runs up to serving, short of binding sockets.
PROBE = f"""
import json, sys, anyio
from contextlib import AsyncExitStack
import podium.agents.cli.agent, podium.agents.specialists.echo, podium.agents.llm, podium.agents.specialists.writer
from podium.agents.host import runtime
from podium.bus.connection import connect
from podium.registry.cards import load_card

async def main():
    async with AsyncExitStack() as stack:
        tools = await runtime._mount_tools(stack, "echo", None, runtime.RuntimeConfig("echo"))
        engine = await runtime._engine(stack)
        client = connect()
        load_card("echo")
        return type(tools).__name__, engine is None, type(client).__module__.split(".")[0]

tools, offline, client = anyio.run(main)
print(json.dumps({{"loaded": [m for m in {HEAVY!r} if m in sys.modules], "tools": tools, "offline": offline,
                  "client": client}}))
"""


def _probe(**env: str) -> dict[str, object]:
    full = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "PODIUM_LLM_PROVIDER",
            "REDIS_URL",
            "PODIUM_SIGNING_KEY",
        )
    } | env
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, env=full, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_an_agent_with_a_real_redis_and_no_key_loads_nothing_it_does_not_use() -> None:
    got = _probe(REDIS_URL="redis://127.0.0.1:1/0")
    assert got == {"loaded": [], "tools": "NoTools", "offline": True, "client": "redis"}
