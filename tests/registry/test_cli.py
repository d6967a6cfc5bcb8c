"""`podium registry` and `podium agents` as real processes."""

from __future__ import annotations

import json
import sys

import anyio
import httpx
import pytest

from podium.registry.store import Registry
from tests.registry.helpers import eventually, podium_card
from tests.registry.servers import a2a_agent
from tests.support import ROOT, Proc, free_port, port_open

pytestmark = pytest.mark.anyio


async def podium(*args: str, env: dict[str, str]) -> anyio.abc.Process:
    return await anyio.run_process(
        [sys.executable, "-m", "podium.agents.cli", *args], env=env, cwd=ROOT, check=False
    )


def base_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_") and k != "REDIS_URL"}
    return {**env, **extra}


async def test_registry_service_and_agents_command(redis, redis_url, keys) -> None:
    port = free_port()
    env = {"REDIS_URL": redis_url, "PODIUM_NAMESPACE": keys.namespace, "PODIUM_REGISTRY_TOKEN": "tok"}
    proc = Proc.podium("registry", "--port", str(port), "--allow-private-urls", env=env)
    try:
        await eventually(lambda: _up(proc, port), within=20, what="podium registry to listen")
        await Registry(redis, keys).register(
            podium_card("analyst"), "a1", ttl=30, info={"url": "http://h:1/"}
        )
        async with a2a_agent() as agent, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).json() == {"status": "ok", "namespace": keys.namespace}
            refused = await http.post("/agents", json={"url": agent})
            assert refused.status_code == 401
            resp = await http.post("/agents", json={"url": agent}, headers={"Authorization": "Bearer tok"})
            assert resp.status_code == 201, resp.text
            assert (await http.get("/agents/hello-agent")).json()["name"] == "Hello Agent"

        done = await podium("agents", "--json", env=base_env(**env))
        assert done.returncode == 0, done.stderr
        listed = {a["name"]: a for a in json.loads(done.stdout)}
        assert set(listed) == {"analyst", "hello-agent"}
        assert listed["analyst"]["alive"] == 1 and listed["analyst"]["skills"] == ["calculate"]
        assert listed["analyst"]["instances"][0]["url"] == "http://h:1/"
        assert listed["hello-agent"]["static"] is True
        assert listed["analyst"]["queue"] == {"depth": 0, "pending": 0, "waiting": 0, "capacity": 1000,
                                              "oldestPendingAgeS": None, "deadLetters": 0}  # fmt: skip
        assert listed["hello-agent"]["queue"] is None  # an outside agent has no inbox

        table = await podium(
            "agents", "--redis-url", redis_url, "--namespace", keys.namespace, env=base_env()
        )
        lines = table.stdout.decode().splitlines()
        assert lines[0].split() == ["NAME", "SKILLS", "ALIVE", "LAST", "HEARTBEAT", "SIGNED",
                                    "QUEUED", "PENDING", "OLDEST", "LOAD", "BREAKER"]  # fmt: skip
        assert lines[1].split()[:3] == ["analyst", "calculate", "1"]
        assert lines[1].split()[-6:] == ["no", "0", "0", "-", "0/1000", "closed"]
        assert lines[2].split()[:3] == ["hello-agent", "greet", "outside"] and lines[2].split()[-5:] == [
            "-"
        ] * 4 + ["closed"]
        assert b"tok" not in proc.output().encode()
    finally:
        try:
            code = proc.terminate()
        finally:
            proc.close()
    assert code == 0


async def test_agents_without_redis_url_explains_what_to_do() -> None:
    done = await podium("agents", env=base_env())
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "REDIS_URL is not set" in err and "embedded bus" in err and "export REDIS_URL=" in err


async def test_bad_configuration_fails_fast(tmp_path) -> None:
    done = await podium("registry", "--trusted-keys", str(tmp_path / "none"), env=base_env())
    assert done.returncode == 2 and b"no such trusted key file or directory" in done.stderr
    done = await podium("agents", "--redis-url", "http://nope", env=base_env())
    assert done.returncode == 2 and b"REDIS_URL: unsupported scheme" in done.stderr


async def _up(proc: Proc, port: int) -> bool:
    if not proc.alive():
        raise RuntimeError(f"podium registry exited:\n{proc.output()}")
    return port_open(port)
