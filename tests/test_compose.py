"""docker-compose.yml, checked without a Docker engine: the file is valid, every service's command is a
real `podium` command, and the whole deployment runs as local processes (same commands, same
environment, with hosts and ports mapped to loopback) and answers over A2A."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis
import yaml
from a2a.types.a2a_pb2 import TaskState
from google.protobuf.json_format import MessageToDict

from agents.cli import COMMANDS, build_parser
from registry.cards import card_names
from tests.agents.agent_procs import READY, fetch_card, make_client, text_request
from tests.support import ROOT, Proc, RedisServer, free_port, port_open, wait_until

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PODIUM = {name: svc for name, svc in SERVICES.items() if name != "redis"}


def test_compose_file_is_complete_and_safe() -> None:
    assert (ROOT / "Dockerfile").is_file()
    assert "redis" in SERVICES and "registry" in SERVICES
    agents = {svc["command"][1] for svc in PODIUM.values() if svc["command"][0] == "agent"}
    # Every agent with a card and an executor runs as its own service (the orchestrator has no
    # executor yet, so it has no service).
    assert agents == set(card_names()) - {"orchestrator"}
    for name, svc in PODIUM.items():
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert svc["environment"]["REDIS_URL"] == "redis://redis:6379/0", name
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        if svc["command"][0] == "agent":
            assert svc["environment"]["PODIUM_PUBLIC_URL"] == f"http://{name}:8000"


@pytest.mark.parametrize("service", sorted(PODIUM))
def test_every_service_command_parses(service: str) -> None:
    argv = PODIUM[service]["command"]
    assert argv[0] in COMMANDS
    build_parser(argv).parse_args(argv)  # exits (SystemExit) on an unknown flag


def _local(
    svc: dict[str, Any], ports: dict[str, int], redis_url: str, namespace: str
) -> tuple[list[str], dict[str, str]]:
    """The service's command and environment, with compose hostnames and ports mapped to loopback."""
    argv = [("127.0.0.1" if a == "0.0.0.0" else a) for a in svc["command"]]
    env = {k: str(v) for k, v in svc["environment"].items() if v is not None and "${" not in str(v)}
    env["REDIS_URL"], env["PODIUM_NAMESPACE"] = redis_url, namespace

    def remap(value: str) -> str:
        return re.sub(r"http://([a-z-]+):8000", lambda m: f"http://127.0.0.1:{ports[m.group(1)]}", value)

    env = {k: remap(v) for k, v in env.items()}
    if "--port" in argv:
        argv[argv.index("--port") + 1] = str(ports[svc["_name"]])
    return argv, env


@pytest.fixture
def deployment(redis_url: str, namespace: str) -> Iterator[dict[str, Any]]:
    ports = {name: free_port() for name in PODIUM}
    procs: dict[str, Proc] = {}
    try:
        # Tool servers first (agents connect to them at start), then the registry and the agents.
        order = sorted(PODIUM, key=lambda n: (not n.startswith("mcp-"), n))
        for name in order:
            argv, env = _local({**PODIUM[name], "_name": name}, ports, redis_url, namespace)
            procs[name] = Proc.podium(*argv, env=env)
            if name.startswith("mcp-"):
                wait_until(lambda n=name: port_open(ports[n]), timeout=30, what=f"{name} to listen")
        for name, proc in procs.items():
            if PODIUM[name]["command"][0] == "agent":
                wait_until(lambda p=proc: _ready(p), timeout=60, what=f"{name} to be ready")
            else:
                wait_until(lambda n=name: port_open(ports[n]), timeout=30, what=f"{name} to listen")
        yield {"ports": ports, "procs": procs}
    finally:
        for proc in procs.values():  # SIGTERM everyone first, so the shutdowns overlap
            proc.signal(signal.SIGTERM)
        for proc in procs.values():
            proc.close()


def test_compose_redis_persists_and_never_evicts() -> None:
    """The compose file's Redis command, run as a real redis-server: append-only, and noeviction."""
    argv = [re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", a) for a in SERVICES["redis"]["command"]]
    assert argv[0] == "redis-server"
    assert argv[argv.index("--maxmemory-policy") + 1] == "noeviction"  # explicit: images may ship configs
    server = RedisServer(extra_args=argv[1:]).start()
    try:
        client = redis.Redis(port=server.port)
        config = client.config_get("*")
        client.close()
    finally:
        server.close()
    assert config["appendonly"] == "yes" and config["maxmemory-policy"] == "noeviction"
    assert int(config["maxmemory"]) > 0  # at the limit it refuses writes (overloaded), never evicts


def _ready(proc: Proc) -> bool:
    if not proc.alive():
        raise RuntimeError(f"service exited:\n{proc.output()}")
    return bool(READY.search(proc.output()))


@pytest.mark.anyio
async def test_the_compose_deployment_runs_as_local_processes(deployment: dict[str, Any]) -> None:
    ports = deployment["ports"]
    agents = sorted(n for n in PODIUM if PODIUM[n]["command"][0] == "agent")
    async with httpx.AsyncClient(timeout=10) as http:
        listed = (await http.get(f"http://127.0.0.1:{ports['registry']}/agents")).json()
    assert list(listed) == ["agents"]  # the registry's one shape: {"agents": [entry, ...]}
    by_name = {a["name"]: a for a in listed["agents"]}
    assert set(agents) <= set(by_name)
    for name in agents:  # each one alive, with its own card and skills, at the port compose gives it
        entry = by_name[name]
        assert entry["alive"] >= 1 and entry["card"]["name"] == name
        assert entry["skills"] == [s["id"] for s in entry["card"]["skills"]] and entry["skills"]
        assert entry["instances"][0]["url"] == f"http://127.0.0.1:{ports[name]}"
    # The researcher reaches the docs server over Streamable HTTP (PODIUM_MCP_DOCS_URL) and answers.
    card = await fetch_card(f"http://127.0.0.1:{ports['researcher']}")
    http_urls = {i.url for i in card.supported_interfaces if i.protocol_binding in ("JSONRPC", "HTTP+JSON")}
    assert http_urls == {f"http://127.0.0.1:{ports['researcher']}"}
    client = make_client(card, "JSONRPC", streaming=False)
    try:
        with anyio.fail_after(60):
            events = [
                ev
                async for ev in client.send_message(
                    text_request("How does the with statement use a context manager?")
                )
            ]
    finally:
        await client.close()
    task = events[-1].task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    [artifact] = task.artifacts
    [data] = [MessageToDict(p.data) for p in artifact.parts if p.HasField("data")]
    # An answer found in the docs server's pages (the question alone has none of this): covered, led by
    # the `with` page, naming the context-manager protocol, every finding cited.
    assert data["covered"] is True and {"docs__search", "docs__read"} <= set(data["toolsCalled"])
    assert data["citations"] and data["citations"][0]["docId"] == "with"
    assert "__enter__" in " ".join(c["quote"] for c in data["citations"] if c["docId"] == "with")
    assert data["findings"] and all(f["citations"] for f in data["findings"])
    text = " ".join(p.text for p in artifact.parts if p.text)
    assert "Sources:" in text and "with:" in text


def test_dockerfile_installs_the_package_and_runs_podium() -> None:
    text = Path(ROOT / "Dockerfile").read_text()
    assert "pip install ." in text and 'ENTRYPOINT ["podium"]' in text
    assert "USER podium" in text  # not root
