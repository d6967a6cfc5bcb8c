"""``podium bench scale``: the orchestrator scaled out, 1..N replicas of it and of its worker on one Redis.

For each replica count N the benchmark starts N ``podium agent orchestrator`` and N ``podium agent echo``
processes (each with ``--concurrency`` request slots, 1 by default), sends a fixed workload of ``--plans`` plans over the
bus, all at once, to the orchestrator's inbox, where any replica takes them, and waits for every one.
Each plan has ``--steps`` independent echo steps that wait ``--work-ms`` (meant I/O-bound: the replicas'
slots, not the cores, should set the pace). Each count also reports ``cores_busy``, the CPU seconds spent by
the replicas, Redis and the benchmark per second of wall time: when it nears the machine's cores the run is
CPU-bound and efficiency measures the cores, not the orchestrator. Reported per count: tasks/s (plans finished per second of wall
time) and the p50/p99 of a plan's latency; and the scaling efficiency at the largest count,
tasks/s at N divided by N times tasks/s at 1 (1.0 is perfect).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from a2a.client import ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import new_data_part, new_text_message
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, Role, SendMessageRequest, TaskState

from podium.bench.fanout import plan
from podium.bench.hop import _percentile
from podium.bench.runner import Progress, emit, measure_with_redis
from podium.bus.a2a_client import BusClient
from podium.bus.backpressure import AgentOverloaded
from podium.bus.binding import bus_interface
from podium.bus.connection import connect
from podium.bus.keys import Keys

CPU_BOUND = 0.85  # share of the machine's cores busy above which the cores, not the replicas, set the pace
READY = re.compile(r"podium agent (\S+) ready: A2A (\S+)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="Redis to use (default: a private redis-server)")
    parser.add_argument("--replicas", default="1,2,4,8", help="replica counts, ascending (1,2,4,8)")
    parser.add_argument(
        "--plans", type=int, default=0, help="plans per count (default: 16 per replica at the largest count)"
    )
    parser.add_argument("--steps", type=int, default=2, help="independent steps per plan (2)")
    parser.add_argument("--work-ms", type=int, default=100, help="time each step's worker waits (100)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="request slots of every replica (1: the slots and the waits set the pace, not the cores)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _counts(text: str) -> list[int] | None:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        return None
    if not counts or counts[0] < 1 or counts != sorted(set(counts)):
        return None
    return counts


def run(args: argparse.Namespace) -> int:
    counts = _counts(args.replicas)
    if counts is None:
        print(
            "podium bench scale: --replicas must be ascending whole numbers from 1, e.g. 1,2,4,8",
            file=sys.stderr,
        )
        return 2
    for name in ("steps", "work_ms", "concurrency"):
        if getattr(args, name) < 1:
            print(f"podium bench scale: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    if args.plans < 0:
        print("podium bench scale: --plans must be at least 1 (or 0 for the default)", file=sys.stderr)
        return 2
    args.counts = counts
    args.plans = args.plans or 16 * counts[-1]
    result = measure_with_redis("scale", args, _run_against, (RuntimeError,))
    if result is None:
        return 2
    lines = [f"{result['plans']} plans of {result['steps']} steps of {result['work_ms']} ms, "
             f"{result['concurrency']} slots per replica:"]  # fmt: skip
    for row in result["counts"]:
        lines.append(
            f"  {row['replicas']:3d} replicas  {row['tasks_per_s']:8.2f} tasks/s   p50 {row['p50_ms']:8.1f} ms   "
            f"p99 {row['p99_ms']:8.1f} ms   efficiency {row['efficiency']:.3f}   CPU per task: orchestrator "
            f"{row['orchestrator_cpu_ms_per_task']:.1f} ms, worker {row['worker_cpu_ms_per_task']:.1f} ms   "
            f"cores busy {row['cores_busy']:.2f}"
        )
    lines.append(
        f"scaling efficiency at {result['counts'][-1]['replicas']} replicas: {result['efficiency']:.3f}"
    )
    busy = max(result["counts"], key=lambda row: row["cores_busy"])
    if busy["cores_busy"] >= CPU_BOUND * result["cores"]:
        lines.append(
            f"CPU-bound from {busy['replicas']} replicas: {busy['cores_busy']:.2f} of {result['cores']} cores busy "
            "(replicas, Redis and this benchmark); fewer slots (--concurrency) or longer steps (--work-ms) "
            "measure scaling without the cores deciding it"
        )
    emit(result, args.json, lines)
    return 0


class _Replicas:
    """N orchestrators and N echo workers in one namespace, for one count's measurement."""

    def __init__(self, redis_url: str, namespace: str, n: int, concurrency: int) -> None:
        env = {**os.environ, "ANTHROPIC_API_KEY": "", "PODIUM_NAMESPACE": namespace, "REDIS_URL": redis_url}
        self.procs: list[tuple[subprocess.Popen[bytes], Any]] = []
        for i in range(n):
            for name in ("echo", "orchestrator"):
                log = tempfile.NamedTemporaryFile(prefix=f"podium-bench-{name}-", suffix=".log", delete=False)
                cmd = [sys.executable, "-m", "podium.agents.cli", "agent", name, "--concurrency", str(concurrency),
                       "--instance", f"scale-{name}-{i}"]  # fmt: skip
                self.procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))

    def __enter__(self) -> _Replicas:
        deadline = time.monotonic() + 120
        ready: set[int] = set()
        while len(ready) < len(self.procs):
            for i, (proc, log) in enumerate(self.procs):
                text = Path(log.name).read_text(errors="replace")
                if READY.search(text):
                    ready.add(i)
                elif proc.poll() is not None:
                    self.__exit__()
                    raise RuntimeError(f"an agent exited at start:\n{text}")
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("the replicas did not become ready within 120s")
            time.sleep(0.1)
        return self

    def cpu_s(self, name: str) -> float:
        """CPU seconds the ``name`` replicas have used so far (0 where /proc is not there)."""
        total = 0.0
        for proc, log in self.procs:
            if f"podium-bench-{name}-" in log.name:
                total += _cpu_s(proc.pid)
        return total

    def __exit__(self, *exc: object) -> None:
        for proc, _ in self.procs:
            proc.terminate()
        for proc, log in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            log.close()
            os.unlink(log.name)


async def _cpu_now(replicas: _Replicas, redis: Any) -> dict[str, float]:
    """CPU seconds used so far by the orchestrator replicas, the workers, the Redis server (``INFO cpu``: its
    process, whoever it served; not its forked children) and this benchmark."""
    info = await redis.info("cpu")
    return {"orchestrator": replicas.cpu_s("orchestrator"), "echo": replicas.cpu_s("echo"),
            "redis": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]), "bench": time.process_time()}  # fmt: skip


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _workload(
    redis_url: str, namespace: str, args: argparse.Namespace, n: int, replicas: _Replicas
) -> tuple[float, list[float], dict[str, float]]:
    """Send every plan at once over the bus; the wall time and each plan's latency (ms)."""
    redis = connect(redis_url, max_connections=args.plans + 16)
    card = AgentCard(name="orchestrator", supported_interfaces=[bus_interface(namespace, "orchestrator")],
                     capabilities=AgentCapabilities())  # fmt: skip
    latencies: list[float] = []
    try:
        async with BusClient(redis, Keys(namespace), default_timeout=600) as bus:
            factory = ClientFactory(
                ClientConfig(streaming=False, supported_protocol_bindings=["redis-streams"])
            )
            bus.register(factory)
            client = factory.create(card)

            async def one(i: int) -> None:
                message = new_text_message("scale", role=Role.ROLE_USER)
                message.parts.append(new_data_part({"plan": plan(args.steps, args.work_ms, n * 100_000 + i)}))
                start = time.perf_counter()
                task = None
                while True:
                    try:
                        async for event in client.send_message(SendMessageRequest(message=message)):
                            task = event.task
                        break
                    except AgentOverloaded as exc:  # more plans than the inbox holds: wait as a caller should
                        await anyio.sleep(exc.retry_after_s)
                if task is None or task.status.state != TaskState.TASK_STATE_COMPLETED:
                    raise RuntimeError(f"a plan did not complete: {task.status if task else 'no task'}")
                latencies.append((time.perf_counter() - start) * 1000)

            warm = min(args.plans, 2 * n)
            async with anyio.create_task_group() as tg:  # warm every replica's connections and code paths
                for i in range(warm):
                    tg.start_soon(one, -1 - i)
            latencies.clear()
            cpu = await _cpu_now(replicas, redis)
            start = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for i in range(args.plans):
                    tg.start_soon(one, i)
            wall = time.perf_counter() - start
            now = await _cpu_now(replicas, redis)
            cpu = {name: now[name] - before for name, before in cpu.items()}
            await client.close()
    finally:
        await redis.aclose()
    return wall, latencies, cpu


async def _run_against(args: argparse.Namespace, redis_url: str, progress: Progress) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for n in args.counts:
        namespace = f"bench{uuid.uuid4().hex[:8]}"
        progress.say(f"starting {n} orchestrator and {n} echo replicas")
        with _Replicas(redis_url, namespace, n, args.concurrency) as replicas:
            wall, latencies, cpu = await _workload(redis_url, namespace, args, n, replicas)
        tps = args.plans / wall
        rows.append({"replicas": n, "wall_s": round(wall, 4), "tasks_per_s": round(tps, 3),
                     "p50_ms": round(_percentile(latencies, 50), 2), "p99_ms": round(_percentile(latencies, 99), 2),
                     "orchestrator_cpu_ms_per_task": round(cpu["orchestrator"] * 1000 / args.plans, 2),
                     "worker_cpu_ms_per_task": round(cpu["echo"] * 1000 / args.plans, 2),
                     "cores_busy": round(sum(cpu.values()) / wall, 2)})  # fmt: skip
        progress.say(f"  {n} replicas: {tps:.2f} tasks/s")
    base = rows[0]["tasks_per_s"] / rows[0]["replicas"]  # per replica at the smallest count
    for row in rows:
        row["efficiency"] = round(row["tasks_per_s"] / (row["replicas"] * base), 4)
    return {
        "benchmark": "scale",
        "plans": args.plans,
        "steps": args.steps,
        "work_ms": args.work_ms,
        "concurrency": args.concurrency,
        "counts": rows,
        "efficiency": rows[-1]["efficiency"],
        "cores": os.cpu_count() or 1,
    }
