"""``podium bench hop``: one A2A hop to the echo agent, over the bus binding and over JSON-RPC HTTP.

Both paths run in the same process against the same ``podium agent echo`` process and the same Redis,
with the ordinary a2a-sdk client; only the transport differs. Reported: p50/p99 of a blocking
``SendMessage`` called sequentially, and requests/s with ``--concurrency`` callers.

The floor is the same ``SendMessage`` (and ``GetTask``) through the same request handler, echo executor
and Redis task store as the agent's, called in this process with no transport at all; each transport's
overhead is its p50 above the floor's.

The raw Streams floor (``streams_floor``) is the physical floor of any request/reply over Redis Streams
from Python: two processes of raw redis-py on the same Redis, sampled in three slices between the other
measurements. The bus transport's overhead (bus p50 minus in-process p50) is printed as a multiple of it.
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
from a2a.server.agent_execution.simple_request_context_builder import SimpleRequestContextBuilder
from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import AgentCard, GetTaskRequest, Role, SendMessageRequest, StreamResponse, TaskState
from google.protobuf.json_format import ParseDict

from podium.agents.host.handler import AgentRequestHandler, MessageIds
from podium.agents.specialists.echo import EchoExecutor
from podium.bench.runner import Progress, emit, measure_with_redis
from podium.bus.a2a_client import BusClient
from podium.bus.connection import connect
from podium.bus.keys import Keys
from podium.bus.task_store import RedisTaskEventStream, RedisTaskStore
from podium.bus.telemetry import traced_executor

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
    """Run the benchmark; returns 2 for bad arguments or an unusable Redis, else 0."""
    for name in ("requests", "concurrent_requests", "concurrency"):
        if getattr(args, name) < 1:
            print(f"podium bench hop: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    result = measure_with_redis("hop", args, _run_against, (RuntimeError,))
    if result is None:
        return 2
    lines = [
        f"sequential SendMessage to the echo agent, {result['requests']} each:",
        f"  bus   p50 {result['bus_p50_ms']:8.2f} ms   p99 {result['bus_p99_ms']:8.2f} ms",
        f"  http  p50 {result['http_p50_ms']:8.2f} ms   p99 {result['http_p99_ms']:8.2f} ms",
        f"  floor p50 {result['floor_p50_ms']:8.2f} ms (same handler and task store, no transport)",
        f"  p50 ratio (bus/http) {result['p50_ratio']:.3f}; overhead above the floor: bus "
        f"{result['bus_overhead_ms']:.2f} ms, http {result['http_overhead_ms']:.2f} ms, "
        f"ratio {result['overhead_ratio']:.3f}",
        f"sequential GetTask (the transport's own cost): bus p50 {result['bus_get_p50_ms']:.2f} ms, "
        f"http p50 {result['http_get_p50_ms']:.2f} ms, ratio {result['get_p50_ratio']:.3f} "
        f"(floor {result['floor_get_p50_ms']:.2f} ms)",
        f"raw Streams request/reply floor (two redis-py processes): p50 {result['streams_floor_p50_ms']:.2f} ms, "
        f"p99 {result['streams_floor_p99_ms']:.2f} ms",
        f"  bus transport overhead: GetTask {result['bus_get_overhead_ms']:.2f} ms = "
        f"{result['get_overhead_x_floor']:.2f}x the floor; SendMessage {result['bus_overhead_ms']:.2f} ms = "
        f"{result['send_overhead_x_floor']:.2f}x the floor",
        f"{result['concurrency']} concurrent callers, {result['concurrent_requests']} requests per transport:",
        f"  bus  {result['bus_rps']:8.0f} req/s",
        f"  http {result['http_rps']:8.0f} req/s",
        f"  rps ratio (bus/http) {result['rps_ratio']:.3f}",
    ]
    emit(result, args.json, lines)
    return 0


async def _run_against(args: argparse.Namespace, redis_url: str, progress: Progress) -> dict[str, Any]:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    progress.say("starting podium agent echo")
    with (
        _echo_agent(redis_url, namespace, args.concurrency) as url,
        _StreamsFloor(redis_url, namespace) as raw,
    ):
        return await _measure(redis_url, namespace, url, args, progress, raw)


class _StreamsFloor:
    """The raw Streams floor's server process for the benchmark's lifetime; ``sample`` runs a client."""

    def __init__(self, redis_url: str, namespace: str) -> None:
        self.url, self.prefix = redis_url, f"{namespace}:floor"
        cmd = [sys.executable, "-m", "podium.bench.streams_floor", "server", redis_url, self.prefix]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.latencies: list[float] = []

    def __enter__(self) -> _StreamsFloor:
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the raw Streams floor server did not start")
        return self

    async def sample(self, n: int) -> None:
        cmd = [sys.executable, "-m", "podium.bench.streams_floor", "client", self.url, self.prefix, str(n)]
        done = await anyio.run_process(cmd, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the raw Streams floor client failed: {done.stderr.decode(errors='replace')}")
        self.latencies += json.loads(done.stdout)

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()


class _Floor:
    """The agent's request handler, echo executor and Redis task store, called in this process: a "client"
    with no transport, for the floor under both transports."""

    def __init__(self, redis: Any, keys: Keys, card: AgentCard) -> None:
        self.handler = AgentRequestHandler(
            traced_executor(EchoExecutor("floor"), "echo"),
            RedisTaskStore(redis, keys, "echo"),
            card,
            agent="echo",
            event_stream=RedisTaskEventStream(redis, keys, "echo"),
            request_context_builder=SimpleRequestContextBuilder(
                task_id_generator=MessageIds("echo", "task"),
                context_id_generator=MessageIds("echo", "context"),
            ),
        )

    async def send_message(self, request: SendMessageRequest) -> Any:
        result = await self.handler.on_message_send(request, ServerCallContext())
        yield StreamResponse(task=result)

    async def get_task(self, request: GetTaskRequest) -> Any:
        return await self.handler.on_get_task(request, ServerCallContext())

    async def close(self) -> None:
        pass


class _echo_agent:
    """A real ``podium agent echo`` process for the benchmark's lifetime."""

    def __init__(self, redis_url: str, namespace: str, concurrency: int) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="podium-bench-echo-", suffix=".log", delete=False)
        cmd = [sys.executable, "-m", "podium.agents.cli", "agent", "echo", "--redis-url", redis_url,
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


async def _measure(
    redis_url: str,
    namespace: str,
    url: str,
    args: argparse.Namespace,
    progress: Progress,
    raw: _StreamsFloor,
) -> dict[str, Any]:
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
        clients: dict[str, Any] = {"floor": _Floor(redis, Keys(namespace), card)}
        for name, binding in (("bus", "redis-streams"), ("http", "JSONRPC")):
            factory = ClientFactory(
                ClientConfig(streaming=False, supported_protocol_bindings=[binding], httpx_client=http)
            )
            bus.register(factory)
            clients[name] = factory.create(card)
        out: dict[str, Any] = {
            "requests": args.requests,
            "concurrent_requests": args.concurrent_requests,
            "concurrency": args.concurrency,
        }
        for client in clients.values():
            for i in range(30):  # warm up connections, scripts and code paths
                await _call(client, i)
        # Interleaved, so drifting background load weighs on both transports alike; the raw floor in
        # three slices between them for the same reason.
        slices = [args.requests // 3 + (1 if i < args.requests % 3 else 0) for i in range(3)]
        progress.say("raw Streams floor")
        await raw.sample(max(slices[0], 1))
        send = await _sequential(clients, args.requests, "sequential SendMessage", progress, _call)
        await raw.sample(max(slices[1], 1))
        task_id = await _a_task_id(clients["bus"])
        get = await _sequential(clients, args.requests, "sequential GetTask", progress, _getter(task_id))
        await raw.sample(max(slices[2], 1))
        out["streams_floor_p50_ms"] = _percentile(raw.latencies, 50)
        out["streams_floor_p99_ms"] = _percentile(raw.latencies, 99)
        for name in clients:
            out[f"{name}_p50_ms"] = _percentile(send[name], 50)
            out[f"{name}_p99_ms"] = _percentile(send[name], 99)
            out[f"{name}_get_p50_ms"] = _percentile(get[name], 50)
        for name, client in clients.items():
            if name == "floor":
                continue
            out[f"{name}_rps"] = await _concurrent(
                client, args.concurrent_requests, args.concurrency, f"{name} x{args.concurrency}", progress
            )
        for client in clients.values():
            await client.close()
    await redis.aclose()
    out["p50_ratio"] = out["bus_p50_ms"] / out["http_p50_ms"]
    out["rps_ratio"] = out["bus_rps"] / out["http_rps"]
    out["get_p50_ratio"] = out["bus_get_p50_ms"] / out["http_get_p50_ms"]
    out["bus_overhead_ms"] = out["bus_p50_ms"] - out["floor_p50_ms"]
    out["http_overhead_ms"] = out["http_p50_ms"] - out["floor_p50_ms"]
    out["overhead_ratio"] = out["bus_overhead_ms"] / out["http_overhead_ms"]
    out["bus_get_overhead_ms"] = out["bus_get_p50_ms"] - out["floor_get_p50_ms"]
    out["get_overhead_x_floor"] = out["bus_get_overhead_ms"] / out["streams_floor_p50_ms"]
    out["send_overhead_x_floor"] = out["bus_overhead_ms"] / out["streams_floor_p50_ms"]
    return out


async def _sequential(
    clients: dict[str, Client],
    n: int,
    label: str,
    progress: Progress,
    call: Callable[[Client, int], Awaitable[None]],
) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {name: [] for name in clients}
    for i in range(n):
        for name, client in clients.items():
            start = time.perf_counter()
            await call(client, i)
            latencies[name].append((time.perf_counter() - start) * 1000)
        progress.tick(label, i + 1, n)
    return latencies


async def _a_task_id(client: Client) -> str:
    async for event in client.send_message(_request(0)):
        return event.task.id
    raise RuntimeError("echo returned no task")


def _getter(task_id: str) -> Callable[[Client, int], Awaitable[None]]:
    """A GetTask of a finished task: one store read, so the transport's own cost shows."""

    async def get(client: Client, i: int) -> None:
        task = await client.get_task(GetTaskRequest(id=task_id))
        if task.id != task_id:
            raise RuntimeError(f"GetTask returned {task.id!r}")

    return get


async def _concurrent(client: Client, total: int, concurrency: int, label: str, progress: Progress) -> float:
    counter = iter(range(total))
    done = 0

    async def worker() -> None:
        nonlocal done
        for i in counter:
            await _call(client, i)
            done += 1
            progress.tick(label, done, total)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return total / (time.perf_counter() - start)


def _percentile(values: list[float], p: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if p < 100 else max(values)
