"""Helpers every benchmark shares: a private redis-server when no URL is given, progress on stderr, output."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from podium.bus.connection import redact
from podium.bus.errors import BusError, ConfigError
from podium.bus.speedups import run as run_loop

INSTALL_HINT = (
    "redis-server not found: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install "
    "redis) or pass --redis-url / set REDIS_URL to benchmark against a running server"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def private_redis(timeout: float = 10.0) -> Iterator[str]:
    """Start a redis-server on a free loopback port without persistence; yield its URL; stop it after.

    Raises ``ConfigError`` with install instructions when ``redis-server`` is not on PATH, or when it
    does not answer within ``timeout`` seconds.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigError(INSTALL_HINT)
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="podium-bench-redis-")
    args = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir, "--save", "",
        "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(port):
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise ConfigError(f"redis-server exited at start: {err.strip()}")
            if time.monotonic() > deadline:
                raise ConfigError(f"redis-server did not answer on port {port} within {timeout}s")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
        shutil.rmtree(workdir, ignore_errors=True)


class Progress:
    """Progress lines on stderr, at most one per ``every`` seconds; silent when ``quiet``."""

    def __init__(self, quiet: bool = False, every: float = 1.0) -> None:
        self.quiet, self.every, self._last = quiet, every, 0.0

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def tick(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.quiet and now - self._last >= self.every:
            self._last = now
            print(f"  {label}: {done}/{total}", file=sys.stderr, flush=True)


def emit(result: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    """Print the result: one JSON object with ``as_json``, else the human-readable ``lines``."""
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        print("\n".join(lines))


Measure = Callable[[argparse.Namespace, str, Progress], Awaitable[dict[str, Any]]]


def measure_with_redis(
    name: str, args: argparse.Namespace, measure: Measure, errors: tuple[type[Exception], ...] = ()
) -> dict[str, Any] | None:
    """Run ``measure`` against ``args.redis_url``, or a private redis-server when none is given.

    Returns the result with ``redis`` set (redacted URL or ``"private"``), or None after printing why the
    benchmark could not run (a bad URL, no redis-server, a Redis that does not answer, ``errors``).
    """
    progress = Progress(quiet=False)
    caught: tuple[type[Exception], ...] = (ConfigError, BusError, *errors)
    try:
        if args.redis_url:
            result = run_loop(measure, args, args.redis_url, progress)
            result["redis"] = redact(args.redis_url)
        else:
            progress.say("starting a private redis-server (no persistence)")
            with private_redis() as url:
                result = run_loop(measure, args, url, progress)
            result["redis"] = "private"
    except caught as exc:
        print(f"podium bench {name}: {exc}", file=sys.stderr)
        return None
    return result
