"""Helpers the tests share: real redis-server processes, free ports, and real `podium` processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NoReturn

import redis

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
INSTALL_HINT = "redis-server not found: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)"
# Under CI (the CI variable set, as .ci/run and CI services do) a missing redis-server fails the run instead
# of skipping a third of the suite.
CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def no_redis_server(reason: str = INSTALL_HINT) -> NoReturn:
    """Skip the test for want of redis-server; under CI, fail it."""
    import pytest

    if CI:
        pytest.fail(f"{reason} (CI is set: the suite needs a real redis-server)", pytrace=False)
    pytest.skip(reason)


ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.02, what: str = "condition") -> None:
    """Poll ``predicate`` until true or raise ``TimeoutError`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class RedisServer:
    """A redis-server process on a free loopback port, which a test may stop, kill and restart."""

    def __init__(
        self,
        *,
        persistent: bool = False,
        port: int | None = None,
        extra_args: Iterable[str] = (),
        auth: tuple[str, str] | None = None,  # (user, password) to ping with, when the default user is off
    ) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError(INSTALL_HINT)
        self.binary: str = REDIS_SERVER
        self.port = port or free_port()
        self.persistent = persistent
        self.extra_args = list(extra_args)  # e.g. ["--maxmemory", "8mb", "--maxmemory-policy", "noeviction"]
        self.dir = tempfile.mkdtemp(prefix="podium-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.auth = auth

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
            "--save", "", "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning",
        ]  # fmt: skip
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        args += self.extra_args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        user, password = self.auth or (None, None)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, username=user, password=password)
        try:
            wait_until(lambda: self._ping(client), timeout=10, what=f"redis-server on port {self.port}")
        finally:
            client.close()
        return self

    @staticmethod
    def _ping(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL: what survives is only what append-only persistence already wrote."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Proc:
    """A real `podium` (or other) OS process, with its output kept in a file for failure messages."""

    def __init__(self, args: Iterable[str], env: Mapping[str, str] | None = None, cwd: Path = ROOT) -> None:
        self.args = list(args)
        self.log = tempfile.NamedTemporaryFile(prefix="podium-proc-", suffix=".log", delete=False)
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            self.args, stdout=self.log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
            start_new_session=True,
        )  # fmt: skip

    @classmethod
    def podium(cls, *args: str, env: Mapping[str, str] | None = None) -> Proc:
        return cls([sys.executable, "-m", "podium.agents.cli", *args], env=env)

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 15) -> int:
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def close(self) -> None:
        if self.alive():
            try:
                self.terminate(5)
            except subprocess.TimeoutExpired:
                pass
        self.log.close()
        os.unlink(self.log.name)
