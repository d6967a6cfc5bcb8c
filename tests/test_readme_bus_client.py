"""The guide's client programs (docs/calling.md), extracted from the page and run as written against a real echo agent on a
real Redis: over the bus it prints the echo, and the request really travelled over the agent's inbox
stream; over HTTP in Python and with the JavaScript SDK (where node and npm exist; CI has them),
pointed at the agent with PODIUM_URL, they print the echo too."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import anyio
import pytest

from podium.bus.keys import Keys
from tests.agents.agent_procs import AgentProc
from tests.docs import block

pytestmark = pytest.mark.anyio
NODE, NPM = shutil.which("node"), shutil.which("npm")


def python_block_after(heading: str, language: str = "python") -> str:
    """The first ```python (or ``language``) block of the section ``heading`` of docs/calling.md."""
    return block("calling.md", heading, language)


async def test_the_readme_clients_run_as_written(
    redis_url: str, namespace: str, redis, tmp_path: Path
) -> None:
    script = tmp_path / "bus_client.py"
    script.write_text(python_block_after("## Python, over the bus"))
    http_script = tmp_path / "http_client.py"
    http_script.write_text(python_block_after("## Python, over HTTP"))
    agent = AgentProc("echo", redis_url, namespace, "readme").wait_ready()
    try:
        env = {**os.environ, "REDIS_URL": redis_url, "PODIUM_NAMESPACE": namespace}
        with anyio.fail_after(120):
            done = await anyio.run_process([sys.executable, str(script)], env=env, cwd=tmp_path, check=False)
        assert done.returncode == 0, done.stderr.decode()
        assert "hello over the bus" in done.stdout.decode()
        # The request went through the echo's inbox (retention may already have trimmed the acked entry).
        added = (await redis.xinfo_stream(Keys(namespace).inbox("echo")))["entries-added"]
        assert added == 1, added
        with anyio.fail_after(120):
            over_http = await anyio.run_process(
                [sys.executable, str(http_script)],
                env={**env, "PODIUM_URL": agent.url},
                cwd=tmp_path,
                check=False,
            )
        assert over_http.returncode == 0, over_http.stderr.decode()
        assert "What is 15% of 240?" in over_http.stdout.decode()
        if NPM and NODE:  # the JavaScript one, with the SDK version the README names
            js = tmp_path / "ask.mjs"
            js.write_text(python_block_after("## JavaScript", "javascript"))
            with anyio.fail_after(180):
                npm = await anyio.run_process(
                    [NPM, "install", "--silent", "--no-audit", "--no-fund", "@a2a-js/sdk@1.3.0"],
                    cwd=tmp_path,
                    check=False,
                )
                assert npm.returncode == 0, npm.stderr.decode()
                node = await anyio.run_process(
                    [NODE, str(js)], env={**env, "PODIUM_URL": agent.url}, cwd=tmp_path, check=False
                )
            assert node.returncode == 0, node.stderr.decode()
            assert "What is 15% of 240?" in node.stdout.decode()
    finally:
        agent.close()
