"""docker-compose.yml, checked without a Docker engine: the file is complete and safe, every service's
command is a real `podium` command, and the whole deployment runs as local processes — the same commands
and environment, with the secrets `podium acl --with-tokens` generates, Redis from the compose command
with the generated ACL file (each service as its own Redis user), replicas as compose would run them,
hosts and ports mapped to loopback — and the orchestrator answers a question over A2A with its token.
(CI also runs Debian's `docker-compose config -q` on the file: .ci/run.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from podium.agents.cli import COMMANDS, build_parser
from podium.agents.cli.acl import TOKENS, read_env_file
from podium.bus.acl import password_variable
from podium.registry.cards import card_names
from tests.agents.agent_procs import READY, fetch_card
from tests.support import CI, REDIS_SERVER, ROOT, Proc, RedisServer, free_port, port_open, wait_until

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PODIUM = {name: svc for name, svc in SERVICES.items() if name != "redis"}
AGENTS = {name for name, svc in PODIUM.items() if svc["command"][0] == "agent"}
ACL_IN_CONTAINER = "/etc/redis/users.acl"
needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed")


def _mounted(agent: str) -> set[str]:
    config = ROOT / "agents" / "config" / f"{agent}.json"
    return {m["name"] for m in json.loads(config.read_text()).get("mcp", [])} if config.exists() else set()


def _redis_user(name: str) -> str | None:
    """The Redis user a service runs as: each agent its own, the registry and the stateful MCP server theirs."""
    if name in AGENTS or name == "registry":
        return name
    if name == "console":
        return "admin"
    return "mcp" if name == "mcp-blackboard" else None


def test_compose_file_is_complete_and_safe() -> None:
    assert (ROOT / "Dockerfile").is_file()
    assert "redis" in SERVICES and "registry" in SERVICES
    assert {svc["command"][1] for n, svc in PODIUM.items() if n in AGENTS} == AGENTS == set(card_names())
    for name, svc in PODIUM.items():
        env = svc["environment"]
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy", name
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for token in TOKENS:  # required, never a default: ports are published, MCP servers on the network
            assert re.fullmatch(rf"\$\{{{token}:\?[^}}]+\}}", env[token]), (name, token)
        user = _redis_user(name)
        if user is None:
            assert "REDIS_URL" not in env, f"{name} keeps no state in Redis and gets no Redis user"
        else:
            variable = password_variable(user)
            assert re.fullmatch(
                rf"redis://{user}:\$\{{{variable}:\?[^}}]+\}}@redis:6379/0", env["REDIS_URL"]
            ), name
        if name in AGENTS:
            for server in _mounted(name):  # started after the tool servers it mounts are healthy
                assert svc["depends_on"][f"mcp-{server}"]["condition"] == "service_healthy", (name, server)
            if name != "orchestrator":
                assert env["PODIUM_PUBLIC_URL"] == f"http://{name}:8000"
    orchestrator = PODIUM["orchestrator"]
    assert orchestrator["ports"] == ["127.0.0.1:${PODIUM_ORCHESTRATOR_PORT:-8700}:8000"]
    assert orchestrator["environment"]["PODIUM_PUBLIC_URL"].endswith(":-http://127.0.0.1:8700}")
    # podman-compose runs replicas only with the mode spelled out
    assert PODIUM["analyst"]["deploy"] == {"mode": "replicated", "replicas": 2}
    redis_svc = SERVICES["redis"]
    assert (
        f"{ACL_IN_CONTAINER}" in redis_svc["command"]
        and f"./users.acl:{ACL_IN_CONTAINER}:ro" in redis_svc["volumes"]
    )
    assert redis_svc["environment"]["REDISCLI_AUTH"].startswith("${PODIUM_REDIS_PASSWORD_ADMIN:?")
    assert redis_svc["healthcheck"]["test"][:4] == ["CMD", "redis-cli", "--user", "admin"]


@pytest.mark.parametrize("service", sorted(PODIUM))
def test_every_service_command_parses(service: str) -> None:
    argv = PODIUM[service]["command"]
    assert argv[0] in COMMANDS
    build_parser(argv).parse_args(argv)  # exits (SystemExit) on an unknown flag


def test_one_service_builds_the_image_every_other_runs() -> None:
    """No engine builds the same image twice: the registry, the first Podium service in the file (compose v1
    ensures images in file order), builds it; the others only name it."""
    builders = [name for name, svc in SERVICES.items() if "build" in svc]
    assert builders == ["registry"] == [n for n in SERVICES if n != "redis"][:1]
    images = {svc["image"] for svc in PODIUM.values()}
    assert images == {PODIUM["registry"]["image"]} == {"podium:latest"}
    # and every Podium service has its health check in the compose file, whatever the image format
    for name, svc in PODIUM.items():
        test = svc["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"] and "/healthz" in test[-1] and ":8000/" in test[-1], name


def _interpolations() -> list[tuple[str, str, str]]:
    text = (ROOT / "docker-compose.yml").read_text()
    return re.findall(r"\$\{([A-Za-z0-9_]+)(:-|:\?|-|\?)?([^}]*)\}", text)


def test_every_variable_is_empty_safe_and_plainly_interpolated() -> None:
    """``${VAR:-default}`` (an empty VAR in .env gets the default too; ``${VAR-default}`` would pass the
    empty string on), ``${VAR:?message}`` for what is required, and no nested interpolation, which
    docker-compose v1 does not understand."""
    found = _interpolations()
    assert found
    for name, op, arg in found:
        assert op in (":-", ":?"), f"${{{name}{op}{arg}}}: use :- (empty-safe) or :? (required)"
        assert "${" not in arg and "$" not in arg, f"{name}: nested interpolation"
    defaults = {name: arg for name, op, arg in found if op == ":-"}
    # Every published port is configurable, with the documented default.
    assert {k: v for k, v in defaults.items() if k.endswith("_PORT")} == {
        "PODIUM_REDIS_PORT": "6379",
        "PODIUM_REGISTRY_PORT": "8701",
        "PODIUM_ORCHESTRATOR_PORT": "8700",
        "PODIUM_CONSOLE_PORT": "8790",
    }
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            assert re.fullmatch(r"127\.0\.0\.1:\$\{PODIUM_[A-Z]+_PORT:-\d+\}:\d+", port), (name, port)


def _compose_env(tmp: Path, secrets: tuple[dict[str, str], Path], **extra: str) -> Path:
    env = tmp / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in {**secrets[0], **extra}.items()))
    return env


@pytest.mark.skipif(
    shutil.which("docker-compose") is None and not CI, reason="Debian's docker-compose not installed"
)
def test_docker_compose_config_accepts_the_file_with_ports_moved(
    secrets: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """docker-compose's own `config` (Debian's docker-compose, as CI installs it), with a local Redis on 6379
    moved aside as the docs say: PODIUM_REDIS_PORT in .env; an empty value falls back to the default."""
    env = _compose_env(tmp_path, secrets, PODIUM_REDIS_PORT="16379", PODIUM_CONSOLE_PORT="")
    done = subprocess.run(
        ["docker-compose", "--env-file", str(env), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    ports = {n: s.get("ports") for n, s in config["services"].items() if s.get("ports")}

    def host_side(port: Any) -> tuple[str, str]:  # v1 prints "ip:host:container", v2 a mapping
        if isinstance(port, str):
            ip, host, _ = port.split(":")
            return ip, host
        return port["host_ip"], str(port["published"])

    published = {n: [host_side(p) for p in v] for n, v in ports.items()}
    assert published["redis"] == [("127.0.0.1", "16379")] and published["console"] == [("127.0.0.1", "8790")]
    assert [n for n, s in config["services"].items() if "build" in s] == ["registry"]


@pytest.mark.skipif(shutil.which("podman") is None and not CI, reason="podman not installed")
def test_podman_compose_builds_once_and_runs_two_analysts(
    secrets: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """podman-compose 1.6's parser and planner (``--dry-run``: the podman commands it would run, none run; ``--build``, so an image already in the store
    does not skip the build):
    one ``podman build``, two analyst containers, and every container with its health check."""
    env = _compose_env(tmp_path, secrets, PODIUM_REDIS_PORT="16379")
    done = subprocess.run(
        [sys.executable, "-m", "podman_compose", "--dry-run", "--verbose", "--env-file", str(env),
         "-f", str(ROOT / "docker-compose.yml"), "up", "--build", "-d"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    log = done.stdout + done.stderr
    assert len(re.findall(r"podman build .*-t podium:latest", log)) == 1, log
    containers = [c for c in re.findall(r"--name=([a-z0-9_-]+)", log) if not c.startswith("pod_")]
    analysts = [c for c in containers if re.fullmatch(r".*_analyst_\d+", c)]
    assert len(analysts) == PODIUM["analyst"]["deploy"]["replicas"] == 2, containers
    assert len(re.findall(r"--health-cmd", log)) == len(containers), log
    assert "127.0.0.1:16379:6379" in log


def test_dockerfile_builds_a_small_non_root_image_with_a_health_check() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("# ") and "FROM python:3.11-slim" in text
    # dependencies before the code: a code change does not reinstall them; the code installed in place
    assert text.index("pip install -r") < text.index("COPY agents") < text.index("pip install --no-deps -e .")
    assert "USER podium" in text and 'ENTRYPOINT ["podium"]' in text
    health = next(line for line in text.splitlines() if "/healthz" in line and "CMD" in line)
    assert "python" in health and "curl" not in health
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".env", "*.acl", "tests", "**/__pycache__"} <= set(ignored)


# -- the deployment as local processes ------------------------------------------------------------


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` over ``env``."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose would refuse: {name} unset ({arg})")
        return arg

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", one, value)


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """The README's container step: ``podium acl --env-file .env --with-tokens --out users.acl``."""
    home = tmp_path_factory.mktemp("compose")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "podium.agents.cli",
            "acl",
            "--env-file",
            ".env",
            "--with-tokens",
            "--out",
            "users.acl",
        ],
        cwd=home,
        env={k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return read_env_file(home / ".env"), home / "users.acl"


def _redis_argv(secrets: tuple[dict[str, str], Path]) -> list[str]:
    env, acl = secrets
    argv = [_interpolate(a, env) for a in SERVICES["redis"]["command"]]
    assert argv[0] == "redis-server"
    return [str(acl) if a == ACL_IN_CONTAINER else a for a in argv]


@pytest.fixture(scope="module")
def compose_redis(secrets: tuple[dict[str, str], Path]) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server not installed")
    env, _ = secrets
    server = RedisServer(
        extra_args=_redis_argv(secrets)[1:], auth=("admin", env["PODIUM_REDIS_PASSWORD_ADMIN"])
    )
    yield server.start()
    server.close()


@needs_redis
def test_compose_redis_persists_never_evicts_and_knows_only_its_users(
    secrets: tuple[dict[str, str], Path],
) -> None:
    """The compose file's Redis command, run as a real redis-server with the generated ACL file (plus, for
    this inspection only, a user that may read the configuration)."""
    acl = secrets[1]
    inspect = acl.with_name("inspect.acl")
    inspect.write_text(acl.read_text() + "user inspector on >inspect ~* +@all\n")
    argv = [str(inspect) if a == str(acl) else a for a in _redis_argv(secrets)]
    assert argv[argv.index("--maxmemory-policy") + 1] == "noeviction"  # explicit: images may ship configs
    server = RedisServer(extra_args=argv[1:], auth=("inspector", "inspect")).start()
    try:
        client = redis.Redis(port=server.port, username="inspector", password="inspect")
        config = client.config_get("*")
        users = {u if isinstance(u, str) else u.decode() for u in client.acl_users()}
        default = client.acl_getuser("default")
        client.close()
        anonymous = redis.Redis(port=server.port, retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.RedisError):
            anonymous.ping()
        anonymous.close()
    finally:
        server.close()
    assert config["appendonly"] == "yes" and config["maxmemory-policy"] == "noeviction"
    assert int(config["maxmemory"]) > 0  # at the limit it refuses writes (overloaded), never evicts
    assert users == {"default", "inspector", "admin", "registry", "mcp"} | AGENTS
    assert "off" in default["flags"]


def _local(name: str, ports: dict[str, int], env: dict[str, str], redis_port: int, port: int) -> Proc:
    """Service ``name`` as a local process: its command and environment, compose names mapped to loopback."""
    svc = PODIUM[name]
    values = {k: _interpolate(str(v), env) for k, v in svc["environment"].items()}

    def remap(value: str) -> str:
        value = value.replace("@redis:6379/", f"@127.0.0.1:{redis_port}/")
        return re.sub(r"http://([a-z-]+):8000", lambda m: f"http://127.0.0.1:{ports[m.group(1)]}", value)

    argv = [remap("127.0.0.1" if a == "0.0.0.0" else a) for a in svc["command"]]
    argv[argv.index("--port") + 1] = str(port)
    return Proc.podium(*argv, env={k: remap(v) for k, v in values.items()})


@pytest.fixture(scope="module")
def deployment(secrets: tuple[dict[str, str], Path], compose_redis: RedisServer) -> Iterator[dict[str, Any]]:
    env = dict(secrets[0])
    ports = {name: free_port() for name in PODIUM}
    env["PODIUM_ORCHESTRATOR_URL"] = f"http://127.0.0.1:{ports['orchestrator']}"
    procs: dict[str, Proc] = {}
    try:
        # Against the dependency order, as an engine that ignores `condition: service_healthy` (podman
        # before 4.6) would start them: the agents and the console first, then the registry, the tool
        # servers last; each service with as many replicas as compose would run. Each waits and retries.
        order = sorted(PODIUM, key=lambda n: (n.startswith("mcp-"), n == "registry", n))
        for name in order:
            replicas = PODIUM[name].get("deploy", {}).get("replicas", 1)
            for i in range(replicas):
                key = name if i == 0 else f"{name}#{i + 1}"
                procs[key] = _local(
                    name, ports, env, compose_redis.port, ports[name] if i == 0 else free_port()
                )
        for key, proc in procs.items():
            if key.split("#")[0] in AGENTS:
                wait_until(lambda p=proc: _ready(p), timeout=120, what=f"{key} to be ready")
        for name in ("registry", "console", *(n for n in PODIUM if n.startswith("mcp-"))):
            wait_until(lambda n=name: _healthy(ports[n]), timeout=60, what=f"{name} to be healthy")
        yield {"ports": ports, "procs": procs, "env": env, "redis_port": compose_redis.port}
    finally:
        for proc in procs.values():  # SIGTERM everyone first, so the shutdowns overlap
            proc.signal(signal.SIGTERM)
        for proc in procs.values():
            proc.close()


def _healthy(port: int) -> bool:
    if not port_open(port):
        return False
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _ready(proc: Proc) -> bool:
    if not proc.alive():
        raise RuntimeError(f"service exited:\n{proc.output()}")
    return bool(READY.search(proc.output()))


@needs_redis
@pytest.mark.anyio
async def test_the_compose_deployment_runs_as_local_processes(deployment: dict[str, Any]) -> None:
    ports, env = deployment["ports"], deployment["env"]
    async with httpx.AsyncClient(timeout=10) as http:
        reply = (await http.get(f"http://127.0.0.1:{ports['registry']}/agents")).json()
    assert list(reply) == ["agents"]  # the registry's one shape: {"agents": [entry, ...]}
    alive = {a["name"]: a["alive"] for a in reply["agents"]}
    assert set(alive) == AGENTS, alive
    assert alive["analyst"] == PODIUM["analyst"]["deploy"]["replicas"]
    # Outside callers reach the orchestrator with the A2A token; its card names the published address.
    url = env["PODIUM_ORCHESTRATOR_URL"]
    card = await fetch_card(url)
    assert {i.url for i in card.supported_interfaces if i.protocol_binding == "JSONRPC"} == {url}
    async with httpx.AsyncClient(timeout=10) as http:
        refused = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {}})
    assert refused.status_code == 401
    # As the README says: the token from .env, then podium ask; podium agents as the admin Redis user.
    question = "How does Python's with statement work? And also, what is 15% of 240?"
    ask = Proc.podium(
        "ask", "--url", url, "--json", "--quiet", question, env={"PODIUM_A2A_TOKEN": env["PODIUM_A2A_TOKEN"]}
    )
    try:
        assert await anyio.to_thread.run_sync(ask.proc.wait, 180) == 0, ask.output()
        task = json.loads(ask.output()[ask.output().index("{") :])
    finally:
        ask.close()
    assert task["status"]["state"] == "TASK_STATE_COMPLETED", task["status"]
    text = " ".join(p.get("text", "") for a in task["artifacts"] for p in a["parts"])
    assert re.search(r"15% of 240 (=|is) 36\b", text) and "context manager" in text.lower(), text
    assert re.search(r"\[\d+\]", text), text  # cited
    admin = f"redis://admin:{env['PODIUM_REDIS_PASSWORD_ADMIN']}@127.0.0.1:{deployment['redis_port']}/0"
    agents = Proc.podium("agents", "--json", env={"REDIS_URL": admin, "PODIUM_NAMESPACE": "podium"})
    try:
        assert await anyio.to_thread.run_sync(agents.proc.wait, 60) == 0, agents.output()
        assert "analyst" in agents.output() and "NOPERM" not in agents.output()
    finally:
        agents.close()
    for key, proc in deployment["procs"].items():
        assert "NOPERM" not in proc.output() and "Traceback" not in proc.output(), (key, proc.output())
