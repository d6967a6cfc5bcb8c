"""The README's bus-client program, extracted from the README and run as written against a real echo agent
on a real Redis: it prints the echo, and the request really travelled over the agent's inbox stream."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

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
        # It went over the bus: the echo agent's inbox received it (acknowledged entries may be trimmed
        # by retention already, so the stream's count of entries ever added says so, not its contents).
        inbox = await redis.xinfo_stream(Keys(namespace).inbox("echo"))
        assert inbox["entries-added"] >= 1, inbox
    finally:
        agent.close()
