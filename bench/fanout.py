"""``podium bench fanout``: a plan of independent steps through the real orchestrator, over the bus.

A ``podium agent orchestrator`` and a ``podium agent echo`` process run on one Redis; the benchmark asks
the orchestrator (a2a-sdk client, JSON-RPC over HTTP) to run a plan of ``--steps`` independent echo
steps, each of which waits ``--work-ms`` at the echo agent. Reported per round: the request's wall
time, the slowest branch (the longest step, as the orchestrator's trace times it: delegation over the
bus plus the work), their ratio (1.0 would be perfect parallelism) and the orchestrator's own overhead
per step, ``(wall - slowest) / steps``. The best round counts; the median is shown beside it.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import new_data_part, new_text_message
from a2a.types.a2a_pb2 import AgentCard, Role, SendMessageRequest, TaskState
from google.protobuf.json_format import ParseDict

from podium.agents.orchestrator.state.trace import read_trace
from podium.bench.runner import Progress, emit, measure_with_redis
from podium.bus.connection import connect
from podium.bus.keys import Keys

READY = re.compile(r"podium agent (\S+) ready: A2A (\S+)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="Redis to use (default: a private redis-server)")
    parser.add_argument("--steps", type=int, default=8, help="independent steps in the plan (8)")
    parser.add_argument("--work-ms", type=int, default=200, help="time each step's worker takes (200)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of the plan; the best counts (5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    for name in ("steps", "work_ms", "rounds"):
        if getattr(args, name) < 1:
            print(f"podium bench fanout: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    result = measure_with_redis("fanout", args, _run_against, (RuntimeError,))
    if result is None:
        return 2
    lines = [
        f"{result['steps']} independent steps of {result['work_ms']} ms each through the orchestrator, over the bus:",
        f"  wall time      {result['wall_ms']:8.1f} ms   (median of {result['rounds']} rounds {result['median_wall_ms']:.1f} ms)",
        f"  slowest branch {result['slowest_ms']:8.1f} ms",
        f"  ratio wall/slowest {result['ratio']:.3f}   (median {result['median_ratio']:.3f}; goal <= 1.05 at 32 steps)",
        f"  orchestrator overhead {result['overhead_ms_per_step']:.2f} ms per step",
    ]
    emit(result, args.json, lines)
    return 0


class _Agents:
    """``podium agent echo`` and ``podium agent orchestrator`` for the benchmark's lifetime."""

    def __init__(self, redis_url: str, namespace: str) -> None:
        self.procs: list[tuple[subprocess.Popen[bytes], Any]] = []
        env = {**os.environ, "ANTHROPIC_API_KEY": "", "PODIUM_NAMESPACE": namespace, "REDIS_URL": redis_url}
        for name in ("echo", "orchestrator"):
            log = tempfile.NamedTemporaryFile(prefix=f"podium-bench-{name}-", suffix=".log", delete=False)
            cmd = [
                sys.executable,
                "-m",
                "podium.agents.cli",
                "agent",
                name,
                "--concurrency",
                "64",
                "--instance",
                f"bench-{name}",
            ]
            self.procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))

    def __enter__(self) -> str:
        deadline = time.monotonic() + 60
        urls: dict[str, str] = {}
        while time.monotonic() < deadline and len(urls) < len(self.procs):
            for proc, log in self.procs:
                text = Path(log.name).read_text(errors="replace")
                if match := READY.search(text):
                    urls[match.group(1)] = match.group(2)
                elif proc.poll() is not None:
                    raise RuntimeError(f"an agent exited at start:\n{text}")
            time.sleep(0.05)
        if "orchestrator" not in urls:
            raise RuntimeError("the orchestrator did not become ready within 60s")
        return urls["orchestrator"]

    def __exit__(self, *exc: object) -> None:
        for proc, _ in self.procs:
            proc.terminate()
        for proc, log in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
            os.unlink(log.name)


def plan(steps: int, work_ms: int, round_no: int) -> dict[str, Any]:
    return {
        "steps": [
            {
                "id": f"s{i}",
                "call": {
                    "skill": "echo",
                    "text": f"round {round_no} step {i}",
                    "metadata": {"delay_s": work_ms / 1000},
                },
            }
            for i in range(1, steps + 1)
        ]
    }


async def _run_against(args: argparse.Namespace, redis_url: str, progress: Progress) -> dict[str, Any]:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    progress.say("starting podium agent echo and podium agent orchestrator")
    with _Agents(redis_url, namespace) as url:
        redis = connect(redis_url)
        try:
            async with httpx.AsyncClient(timeout=120, trust_env=False) as http:
                card = ParseDict(
                    (await http.get(f"{url}/.well-known/agent-card.json")).json(),
                    AgentCard(),
                    ignore_unknown_fields=True,
                )
                factory = ClientFactory(
                    ClientConfig(streaming=False, supported_protocol_bindings=["JSONRPC"], httpx_client=http)
                )
                client = factory.create(card)
                rounds = []
                for n in range(args.rounds + 1):  # round 0 warms up
                    message = new_text_message("fan out", role=Role.ROLE_USER)
                    message.parts.append(new_data_part({"plan": plan(args.steps, args.work_ms, n)}))
                    start = time.perf_counter()
                    task = None
                    async for event in client.send_message(SendMessageRequest(message=message)):
                        task = event.task
                    wall = (time.perf_counter() - start) * 1000
                    if task is None or task.status.state != TaskState.TASK_STATE_COMPLETED:
                        raise RuntimeError(f"the plan did not complete: {task.status if task else 'no task'}")
                    entries = await read_trace(redis, Keys(namespace), task.id)
                    durations = [
                        e.duration_ms for e in entries if e.event == "step" and e.state == "completed"
                    ]
                    if len(durations) != args.steps or any(d is None for d in durations):
                        raise RuntimeError(
                            f"expected {args.steps} completed steps in the trace, got {len(durations)}"
                        )
                    slowest = max(d for d in durations if d is not None)
                    if n:
                        rounds.append((wall, slowest))
                        progress.tick("rounds", n, args.rounds)
                await client.close()
        finally:
            await redis.aclose()
    best_wall, best_slowest = min(rounds, key=lambda r: r[0] / r[1])
    ratios = [w / s for w, s in rounds]
    return {
        "steps": args.steps,
        "work_ms": args.work_ms,
        "rounds": args.rounds,
        "wall_ms": round(best_wall, 2),
        "slowest_ms": round(best_slowest, 2),
        "ratio": round(best_wall / best_slowest, 4),
        "overhead_ms_per_step": round((best_wall - best_slowest) / args.steps, 3),
        "median_wall_ms": round(statistics.median(w for w, _ in rounds), 2),
        "median_ratio": round(statistics.median(ratios), 4),
    }
