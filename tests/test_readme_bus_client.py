"""The README's bus-client program, extracted from the README and run as written against a real echo agent
on a real Redis: it prints the echo, and the request really travelled over the agent's inbox stream."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest

from bus.envelope import FIELD, Envelope
from bus.keys import Keys
from tests.agents.agent_procs import AgentProc
from tests.support import ROOT

pytestmark = pytest.mark.anyio


def python_block_after(heading: str) -> str:
    """The first ```python block of the README section ``heading``."""
    text = (ROOT / "README.md").read_text()
    start = text.index("```python\n", text.index(f"\n{heading}\n")) + len("```python\n")
    return text[start : text.index("\n```", start)]


async def test_the_readme_bus_client_runs_as_written_over_the_bus(
    redis_url: str, namespace: str, redis, tmp_path: Path
) -> None:
    script = tmp_path / "bus_client.py"
    script.write_text(python_block_after("## A2A over Redis Streams"))
    agent = AgentProc("echo", redis_url, namespace, "readme").wait_ready()
    try:
        env = {**os.environ, "REDIS_URL": redis_url, "PODIUM_NAMESPACE": namespace, "PYTHONPATH": str(ROOT)}
        with anyio.fail_after(120):
            done = await anyio.run_process([sys.executable, str(script)], env=env, cwd=tmp_path, check=False)
        assert done.returncode == 0, done.stderr.decode()
        assert "hello over the bus" in done.stdout.decode()
        inbox = await redis.xrange(Keys(namespace).inbox("echo"))
        requests = [Envelope.decode(fields[FIELD.encode()]) for _, fields in inbox]
        assert any("hello over the bus" in json.dumps(env.payload) for env in requests), requests
    finally:
        agent.close()
