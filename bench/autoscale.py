"""``podium bench autoscale``: KEDA's role played on one machine, to show scaling on the bus loses nothing.

A scaler reads the metrics a ScaledObject's ``redis-streams`` triggers name (deploy/kubernetes/base/keda.yaml)
the way KEDA's scaler reads them — the consumer group's ``lag`` from XINFO GROUPS (XLEN when the group is
missing, 0 when the stream is), its pending count from XPENDING — and decides like KEDA and the HPA do: active
while any metric is above its activation value, ``ceil(metric / target)`` replicas (the largest over the
triggers) within the min and max, and back to the minimum only after ``cooldown`` seconds idle. It starts
real ``podium agent echo`` processes to scale up and SIGTERMs the newest to scale down, as Kubernetes does,
while bursts of requests arrive over the bus (an a2a-sdk client on the ``redis-streams`` binding), each
echo taking ``--work`` seconds. Between bursts the agent goes back to zero replicas, so every burst after
the first starts from zero.

It reports requests sent, answered, lost (no completed answer) and run twice (from each task's own event
log in Redis: more than one ``working`` status), and every scale event. The inbox groups exist before any
replica, as ``podium prepare`` makes them. ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import time
import uuid
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import anyio
from a2a.client import ClientCallContext, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import GetTaskRequest, Role, SendMessageRequest, StreamResponse, Task, TaskState
from google.protobuf.json_format import MessageToDict
from redis.exceptions import ResponseError

from podium.bench.runner import private_redis
from podium.bus.a2a_client import BusClient
from podium.bus.binding import BINDING, bus_interface
from podium.bus.connection import connect
from podium.bus.keys import Keys
from podium.bus.states import TERMINAL
from podium.bus.streams import StreamBus
from podium.bus.text import text

AGENT = "echo"


def progress(message: str) -> None:
    print(f"podium bench autoscale: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Trigger:
    """One ``redis-streams`` trigger: ``lag`` (lagCount) or ``pending`` (pendingEntriesCount)."""

    metric: str
    target: int
    activation: int = 0


@dataclass(frozen=True)
class Policy:
    """What a ScaledObject says (times may be shortened for a local run)."""

    triggers: tuple[Trigger, ...]
    min_replicas: int = 0
    max_replicas: int = 10
    polling_s: float = 5.0
    cooldown_s: float = 120.0

    @classmethod
    def from_scaled_object(cls, obj: dict[str, Any], **overrides: Any) -> Policy:
        """The policy of a KEDA ScaledObject (as parsed YAML). Raises ``ValueError`` for a trigger this
        scaler does not play (only ``redis-streams`` with a consumer group)."""
        spec = obj["spec"]
        triggers = []
        for t in spec["triggers"]:
            meta = t["metadata"]
            if t["type"] != "redis-streams" or not meta.get("consumerGroup"):
                raise ValueError(
                    f"trigger {t.get('name')!r}: only redis-streams with a consumerGroup is played"
                )
            metric, target = (
                ("lag", meta["lagCount"])
                if "lagCount" in meta
                else ("pending", meta.get("pendingEntriesCount", 5))
            )
            triggers.append(Trigger(metric, int(target), int(meta.get("activationLagCount", 0))))
        values = {
            "triggers": tuple(triggers),
            "min_replicas": int(spec.get("minReplicaCount", 0)),
            "max_replicas": int(spec.get("maxReplicaCount", 100)),
            "polling_s": float(spec.get("pollingInterval", 30)),
            "cooldown_s": float(spec.get("cooldownPeriod", 300)),
        }
        return cls(**{**values, **overrides})

    def decide(self, current: int, metrics: dict[str, int], idle_for: float) -> int:
        """Replicas wanted now: KEDA's activation and cooldown around the HPA's ``ceil(value / target)``."""
        if not any(metrics[t.metric] > t.activation for t in self.triggers):
            return self.min_replicas if idle_for >= self.cooldown_s else max(current, self.min_replicas)
        wanted = max(math.ceil(metrics[t.metric] / t.target) for t in self.triggers)
        return min(self.max_replicas, max(wanted, self.min_replicas, 1))


async def read_metrics(redis: Any, stream: str, group: str) -> dict[str, int]:
    """``lag`` and ``pending`` as KEDA's redis-streams scaler reads them."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no such key: nothing was ever sent
        return {"lag": 0, "pending": 0}
    for g in groups:
        name = text(g["name"])
        if name == group:
            pending = (await redis.xpending(stream, group))["pending"]
            return {"lag": int(g.get("lag") or 0), "pending": int(pending)}
    return {"lag": int(await redis.xlen(stream)), "pending": 0}


@dataclass
class Report:
    sent: int = 0
    answered: int = 0
    lost: int = 0
    run_twice: int = 0
    replicas_started: int = 0
    scale_events: list[dict[str, Any]] = field(default_factory=list)
    served_by: dict[str, int] = field(default_factory=dict)

    @property
    def from_zero(self) -> int:
        return sum(1 for e in self.scale_events if e["from"] == 0 and e["to"] > 0)

    @property
    def to_zero(self) -> int:
        return sum(1 for e in self.scale_events if e["to"] == 0)


class Replicas:
    """``podium agent echo`` processes, started and SIGTERMed like a Deployment's pods."""

    def __init__(self, redis_url: str, namespace: str, grace_s: float) -> None:
        self.redis_url, self.namespace, self.grace_s = redis_url, namespace, grace_s
        self.running: list[subprocess.Popen[bytes]] = []
        self.stopping: list[subprocess.Popen[bytes]] = []
        self.started = 0

    @property
    def count(self) -> int:
        self.stopping = [p for p in self.stopping if p.poll() is None]
        return len(self.running)

    def scale(self, wanted: int) -> None:
        while len(self.running) < wanted:
            self.started += 1
            argv = [sys.executable, "-m", "podium.agents.cli", "agent", AGENT, "--redis-url", self.redis_url,
                    "--namespace", self.namespace, "--instance", f"{AGENT}-r{self.started}", "--grace", f"{self.grace_s:g}"]  # fmt: skip
            self.running.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        while len(self.running) > wanted:
            proc = self.running.pop()  # the newest, as a ReplicaSet prefers the youngest pod
            proc.send_signal(signal.SIGTERM)
            self.stopping.append(proc)

    def close(self) -> None:
        for proc in self.running + self.stopping:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.running + self.stopping:
            try:
                proc.wait(self.grace_s + 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _scaler(
    redis: Any, keys: Keys, policy: Policy, replicas: Replicas, report: Report, stop: anyio.Event
) -> None:
    started = idle_since = time.monotonic()
    while not stop.is_set():
        metrics = await read_metrics(redis, keys.inbox(AGENT), AGENT)
        now = time.monotonic()
        if any(metrics[t.metric] > t.activation for t in policy.triggers):
            idle_since = now
        current = replicas.count
        wanted = policy.decide(current, metrics, now - idle_since)
        if wanted != current:
            report.scale_events.append(
                {"at_s": round(now - started, 2), "from": current, "to": wanted, **metrics}
            )
            replicas.scale(wanted)
        with anyio.move_on_after(policy.polling_s):
            await stop.wait()


async def _one(client: Any, text: str, work_s: float, results: dict[str, Task], timeout_s: float) -> None:
    message = new_text_message(text, role=Role.ROLE_USER)
    message.metadata.update({"delay_s": work_s})
    context = ClientCallContext(timeout=timeout_s)
    try:
        with anyio.fail_after(timeout_s):
            async for event in client.send_message(SendMessageRequest(message=message), context=context):
                if event.HasField("task"):
                    task = event.task
                    while task.status.state not in TERMINAL:
                        await anyio.sleep(0.5)
                        task = await client.get_task(GetTaskRequest(id=task.id), context=context)
                    results[text] = task
                    return
    except Exception as exc:  # a lost request is what this measures: count it, say why
        progress(f"request {text}: {type(exc).__name__}: {exc}")


async def _runs(redis: Any, keys: Keys, task_id: str) -> int:
    """How many times the agent ran a task: the ``working`` statuses in the task's own event log."""
    runs = 0
    for _, fields in await redis.xrange(keys.task_events(AGENT, task_id)):
        event = StreamResponse()
        event.ParseFromString(fields[b"e"])
        if (
            event.HasField("status_update")
            and event.status_update.status.state == TaskState.TASK_STATE_WORKING
        ):
            runs += 1
    return runs


async def measure(redis_url: str, policy: Policy, *, bursts: int, burst_size: int, work_s: float,
                  grace_s: float = 10.0, timeout_s: float = 180.0) -> Report:  # fmt: skip
    """Send ``bursts`` bursts of ``burst_size`` requests to the echo agent while ``policy`` scales it, each
    burst once the agent is back at zero. Returns the report."""
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    keys = Keys(namespace)
    redis = connect(redis_url)
    report = Report()
    replicas = Replicas(redis_url, namespace, grace_s)
    results: dict[str, Task] = {}
    stop = anyio.Event()
    try:
        await StreamBus(redis, keys).ensure_group(keys.inbox(AGENT), AGENT, start_id="0")  # podium prepare
        from podium.registry.cards import load_card

        card = load_card(AGENT, interfaces=[bus_interface(namespace, AGENT)])
        async with BusClient(redis, keys, sender="bench") as bus:
            factory = ClientFactory(ClientConfig(streaming=False, supported_protocol_bindings=[BINDING]))
            bus.register(factory)
            client = factory.create(card)
            async with anyio.create_task_group() as tg:
                tg.start_soon(_scaler, redis, keys, policy, replicas, report, stop)
                for burst in range(bursts):
                    while replicas.count or replicas.stopping:  # noqa: ASYNC110 - each burst meets an agent at zero
                        await anyio.sleep(0.2)
                    progress(f"burst {burst + 1}/{bursts}: {burst_size} requests to {AGENT} at zero replicas")
                    async with anyio.create_task_group() as sends:
                        for i in range(burst_size):
                            report.sent += 1
                            sends.start_soon(_one, client, f"b{burst}-r{i}", work_s, results, timeout_s)
                while replicas.count or replicas.stopping:  # noqa: ASYNC110 - processes, not tasks
                    await anyio.sleep(0.2)
                stop.set()
            await client.close()
        for task in results.values():
            if task.status.state == TaskState.TASK_STATE_COMPLETED:
                report.answered += 1
                served = next(
                    (
                        MessageToDict(p.data).get("servedBy")
                        for a in task.artifacts
                        for p in a.parts
                        if p.HasField("data")
                    ),
                    "?",
                )
                report.served_by[served] = report.served_by.get(served, 0) + 1
                if await _runs(redis, keys, task.id) != 1:
                    report.run_twice += 1
        report.lost = report.sent - report.answered
        report.replicas_started = replicas.started
        return report
    finally:
        stop.set()
        replicas.close()
        await redis.aclose()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="Redis URL (default: a private redis-server)")
    parser.add_argument(
        "--bursts", type=int, default=3, help="bursts of requests, each from zero replicas (3)"
    )
    parser.add_argument("--burst-size", type=int, default=40, help="requests per burst (40)")
    parser.add_argument("--work", type=float, default=1.0, help="seconds each request works (1)")
    parser.add_argument("--lag-count", type=int, default=5, help="lagCount: waiting requests per replica (5)")
    parser.add_argument("--pending-count", type=int, default=16, help="pendingEntriesCount per replica (16)")
    parser.add_argument("--max-replicas", type=int, default=4, help="maxReplicaCount (4)")
    parser.add_argument("--polling", type=float, default=0.5, help="pollingInterval seconds (0.5; KEDA: 5)")
    parser.add_argument("--cooldown", type=float, default=3.0, help="cooldownPeriod seconds (3; KEDA: 120)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    for name in ("bursts", "burst_size", "lag_count", "pending_count", "max_replicas"):
        if getattr(args, name) < 1:
            print(f"podium bench autoscale: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    policy = Policy(
        (Trigger("lag", args.lag_count), Trigger("pending", args.pending_count)),
        max_replicas=args.max_replicas, polling_s=args.polling, cooldown_s=args.cooldown,
    )  # fmt: skip
    with private_redis() if not args.redis_url else nullcontext(args.redis_url) as url:
        report = anyio.run(
            lambda: measure(url, policy, bursts=args.bursts, burst_size=args.burst_size, work_s=args.work)
        )
    out = {**asdict(report), "fromZero": report.from_zero, "toZero": report.to_zero}
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"sent {report.sent}, answered {report.answered}, lost {report.lost}, run twice {report.run_twice}"
        )
        print(
            f"replicas started {report.replicas_started}; scaled from zero {report.from_zero}x, to zero {report.to_zero}x"
        )
        for e in report.scale_events:
            print(f"  {e['at_s']:7.2f}s  {e['from']} -> {e['to']}  (lag {e['lag']}, pending {e['pending']})")
    return 0 if report.lost == 0 and report.run_twice == 0 else 1
