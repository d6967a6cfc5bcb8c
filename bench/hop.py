"""``podium bench hop``: one A2A hop to the echo agent, over the bus binding and over JSON-RPC HTTP.

Both paths run in the same process against the same ``podium agent echo`` process and the same Redis,
with the ordinary a2a-sdk client; only the transport differs. Reported: p50/p99 of a blocking
``SendMessage`` called sequentially, and requests/s with ``--concurrency`` callers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.client.client import Client
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import AgentCard, Role, SendMessageRequest, TaskState
from google.protobuf.json_format import ParseDict

from bench.runner import private_redis, progress
from bus.a2a_client import BusClient
from bus.connection import connect
from bus.keys import Keys

READY = re.compile(r"podium agent echo ready: A2A (\S+)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="Redis to use (default: a private redis-server)")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per transport (300)")
    parser.add_argument(
        "--concurrent-requests", type=int, default=1500, help="requests per transport under load"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent callers (32)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    result = anyio.run(_main, args)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"hop p50: bus {result['bus_p50_ms']:.2f} ms, http {result['http_p50_ms']:.2f} ms "
            f"(ratio {result['p50_ratio']:.2f}); p99: bus {result['bus_p99_ms']:.2f} ms, "
            f"http {result['http_p99_ms']:.2f} ms"
        )
        print(
            f"hop throughput at {args.concurrency} callers: bus {result['bus_rps']:.0f} req/s, "
            f"http {result['http_rps']:.0f} req/s (ratio {result['rps_ratio']:.2f})"
        )
    return 0


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    with private_redis(args.redis_url) as redis_url:
        namespace = f"bench{uuid.uuid4().hex[:8]}"
        with _echo_agent(redis_url, namespace, args.concurrency) as url:
            return await _measure(redis_url, namespace, url, args)


class _echo_agent:
    """A real ``podium agent echo`` process for the benchmark's lifetime."""

    def __init__(self, redis_url: str, namespace: str, concurrency: int) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="podium-bench-echo-", suffix=".log", delete=False)
        cmd = [sys.executable, "-m", "agents.cli", "agent", "echo", "--redis-url", redis_url,
               "--namespace", namespace, "--instance", "bench", "--no-register",
               "--concurrency", str(max(concurrency * 2, 16))]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ})

    def __enter__(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = Path(self.log.name).read_text(errors="replace")
            if match := READY.search(text):
                return match.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError(f"echo agent exited:\n{text}")
            time.sleep(0.05)
        raise RuntimeError("echo agent did not become ready within 30s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        os.unlink(self.log.name)


def _request(i: int) -> SendMessageRequest:
    return SendMessageRequest(message=new_text_message(f"ping {i}", role=Role.ROLE_USER))


async def _call(client: Client, i: int) -> None:
    async for event in client.send_message(_request(i)):
        if event.task.status.state != TaskState.TASK_STATE_COMPLETED:
            raise RuntimeError(f"echo did not complete: {event}")


async def _measure(redis_url: str, namespace: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    redis = connect(redis_url, max_connections=args.concurrency * 4)
    limits = httpx.Limits(
        max_connections=args.concurrency * 2, max_keepalive_connections=args.concurrency * 2
    )
    # TCP_NODELAY: without it small JSON-RPC posts can stall on delayed ACKs, which would flatter the bus.
    transport = httpx.AsyncHTTPTransport(
        limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    async with (
        httpx.AsyncClient(transport=transport, timeout=60) as http,
        BusClient(redis, Keys(namespace)) as bus,
    ):
        card = ParseDict((await http.get(f"{url}/.well-known/agent-card.json")).json(), AgentCard(),
                         ignore_unknown_fields=True)  # fmt: skip
        clients = {}
        for name, binding in (("bus", "redis-streams"), ("http", "JSONRPC")):
            factory = ClientFactory(
                ClientConfig(streaming=False, supported_protocol_bindings=[binding], httpx_client=http)
            )
            bus.register(factory)
            clients[name] = factory.create(card)
        out: dict[str, Any] = {"requests": args.requests, "concurrency": args.concurrency}
        for client in clients.values():
            for i in range(30):  # warm up connections, scripts and code paths
                await _call(client, i)
        for name, client in clients.items():
            lat = await _sequential(client, args.requests, f"{name} sequential")
            out[f"{name}_p50_ms"] = _percentile(lat, 50)
            out[f"{name}_p99_ms"] = _percentile(lat, 99)
        for name, client in clients.items():
            out[f"{name}_rps"] = await _concurrent(
                lambda i, c=client: _call(c, i),
                args.concurrent_requests,
                args.concurrency,
                f"{name} x{args.concurrency}",
            )
        for client in clients.values():
            await client.close()
    await redis.aclose()
    out["p50_ratio"] = out["bus_p50_ms"] / out["http_p50_ms"]
    out["rps_ratio"] = out["bus_rps"] / out["http_rps"]
    return out


async def _sequential(client: Client, n: int, label: str) -> list[float]:
    latencies = []
    for i in range(n):
        start = time.perf_counter()
        await _call(client, i)
        latencies.append((time.perf_counter() - start) * 1000)
        progress(label, i + 1, n)
    return latencies


async def _concurrent(
    call: Callable[[int], Awaitable[None]], total: int, concurrency: int, label: str
) -> float:
    counter = iter(range(total))
    done = 0

    async def worker() -> None:
        nonlocal done
        for i in counter:
            await call(i)
            done += 1
            progress(label, done, total)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return total / (time.perf_counter() - start)


def _percentile(values: list[float], p: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if p < 100 else max(values)
