"""The system a soak runs against: a private redis-server (append-only, the ACL file ``podium acl`` writes)
and ``podium up`` on it with each agent as its own Redis user; what a soak does to it (SIGKILL an agent
process, restart Redis) and reads from it (each agent's RSS, Redis's memory and keys)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podium.bench.runner import INSTALL_HINT, _free_port
from podium.bus.acl import SERVICE_USERS, acl_file, password_variable, users
from podium.bus.errors import ConfigError
from podium.bus.keys import Keys
from podium.bus.text import text

NAMESPACE = "soak"
TOKEN_ENV = "PODIUM_A2A_TOKEN"
CLIENTS_ENV = "PODIUM_CLIENTS_FILE"


@dataclass
class System:
    """Redis and ``podium up`` for one soak; :meth:`start` then :meth:`close`."""

    agents: list[str]
    callers: list[str] = field(default_factory=list)  # outside clients, each with a token of its own
    extra_env: dict[str, str] = field(default_factory=dict)
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="podium-soak-")))
    port: int = field(default_factory=_free_port)
    passwords: dict[str, str] = field(default_factory=dict)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redis: subprocess.Popen[bytes] | None = None
    up: subprocess.Popen[bytes] | None = None
    log: deque[str] = field(default_factory=lambda: deque(maxlen=400))
    restarts: list[str] = field(default_factory=list)  # what `podium up` said it restarted
    tokens: dict[str, str] = field(default_factory=dict)  # caller -> its token (`podium clients add`)

    @property
    def keys(self) -> Keys:
        return Keys(NAMESPACE)

    def url(self, user: str = "admin") -> str:
        return f"redis://{user}:{self.passwords[user]}@127.0.0.1:{self.port}/0"

    # -- Redis ------------------------------------------------------------------------------------

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise ConfigError(INSTALL_HINT)
        self.passwords = {u: secrets.token_urlsafe(18) for u in [*SERVICE_USERS, *self.agents]}
        (self.home / "users.acl").write_text(acl_file(users(self.keys, self.agents, self.passwords)))
        for name in self.callers:
            self.tokens[name] = _add_client(name, self.home / "clients.json")
        self.start_redis()
        self.start_up()

    def start_redis(self) -> None:
        args = [
            shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.home), "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
            "--aclfile", str(self.home / "users.acl"), "--daemonize", "no", "--loglevel", "warning",
        ]  # fmt: skip
        self.redis = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not _ready_as_admin(self.port, self.passwords["admin"]):
            if self.redis.poll() is not None or time.monotonic() > deadline:
                raise ConfigError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def restart_redis(self) -> float:
        """Stop Redis the way an operator does (SIGTERM: it writes its append-only file and exits), start it
        again on the same port and files; returns the seconds it was away."""
        assert self.redis is not None
        began = time.monotonic()
        self.redis.send_signal(signal.SIGTERM)
        self.redis.wait(60)
        self.start_redis()
        return time.monotonic() - began

    # -- podium up --------------------------------------------------------------------------------

    def start_up(self) -> None:
        env = {
            **os.environ,
            **{password_variable(u): p for u, p in self.passwords.items()},
            TOKEN_ENV: self.token,
            **({CLIENTS_ENV: str(self.home / "clients.json")} if self.callers else {}),
            "PODIUM_NAMESPACE": NAMESPACE,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        env.pop("REDIS_URL", None)
        argv = [sys.executable, "-m", "podium.agents.cli", "up", "--redis-url", self.url(), "--any-port",
                "--no-console", "--agents", ",".join(self.agents), "--startup-timeout", "300"]  # fmt: skip
        self.up = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        threading.Thread(target=self._read_up, daemon=True).start()

    def _read_up(self) -> None:
        assert self.up is not None and self.up.stdout is not None
        for raw in self.up.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            if line.startswith("podium up: restarted "):
                self.restarts.append(line)

    def wait_ready(self, timeout: float = 600) -> None:
        """Until ``podium up`` says every agent is up; raises ``ConfigError`` with its last lines if it ends."""
        deadline = time.monotonic() + timeout
        while not any(line.startswith("Stop with") or "Ask it:" in line for line in list(self.log)):
            if self.up is None or self.up.poll() is not None or time.monotonic() > deadline:
                tail = "\n  ".join(list(self.log)[-25:])
                raise ConfigError(f"podium up did not become ready; its last lines:\n  {tail}")
            time.sleep(0.2)

    def agent_pids(self) -> dict[str, int]:
        """The pid of each agent process ``podium up`` runs, by agent name (its children's command lines)."""
        found: dict[str, int] = {}
        if self.up is None:
            return found
        for pid in _children(self.up.pid):
            argv = _cmdline(pid)
            if "agent" in argv:
                at = argv.index("agent")
                if at + 1 < len(argv) and argv[at + 1] in self.agents:
                    found[argv[at + 1]] = pid
        return found

    def kill_agent(self, name: str) -> int | None:
        """SIGKILL agent ``name``'s process (not the MCP servers it runs: the supervisor sweeps them)."""
        pid = self.agent_pids().get(name)
        if pid is None:
            return None
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return pid

    def rss_mb(self) -> dict[str, float]:
        """Each agent's resident memory with the processes it started (its stdio MCP servers), MB."""
        return {
            name: round(sum(_rss_kb(p) for p in [pid, *_tree(pid)]) / 1024, 1)
            for name, pid in self.agent_pids().items()
        }

    def close(self) -> None:
        if self.up is not None and self.up.poll() is None:
            self.up.send_signal(signal.SIGTERM)
            try:
                self.up.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(self.up.pid, signal.SIGKILL)
                self.up.wait()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            try:
                self.redis.wait(30)
            except subprocess.TimeoutExpired:
                self.redis.kill()
                self.redis.wait()
        shutil.rmtree(self.home, ignore_errors=True)


async def redis_stats(redis: Any, keys: Keys) -> dict[str, Any]:
    """Redis's used memory (bytes) and the namespace's keys, counted by kind (``task``, ``run``, ...)."""
    info = await redis.info("memory")
    kinds: dict[str, int] = {}
    async for key in redis.scan_iter(match=f"{keys.namespace}:*", count=1000):
        name = text(key)
        kind = name.split(":")[1] if name.count(":") else name
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"memory": int(info["used_memory"]), "keys": sum(kinds.values()), "kinds": kinds}


def _add_client(name: str, path: Path) -> str:
    """``podium clients add NAME --file PATH`` as a user runs it; returns the token it prints."""
    done = subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", "clients", "add", name, "--file", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise ConfigError(f"podium clients add {name} failed: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def _ready_as_admin(port: int, password: str) -> bool:
    import redis as sync_redis

    try:
        client = sync_redis.Redis(port=port, username="admin", password=password, socket_connect_timeout=0.3)
        try:
            return bool(client.ping()) and client.info("persistence").get("loading") == 0
        finally:
            client.close()
    except (sync_redis.RedisError, OSError):
        return False


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _tree(pid: int) -> list[int]:
    out: list[int] = []
    for child in _children(pid):
        out += [child, *_tree(child)]
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return []


def _rss_kb(pid: int) -> int:
    try:
        match = re.search(r"^VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)
    except OSError:
        return 0
    return int(match.group(1)) if match else 0
