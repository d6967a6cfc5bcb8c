"""``podium bench cost``: what a task costs as the work grows, through a real orchestrator and worker.

One ``podium agent orchestrator`` and one ``podium agent echo`` run on one Redis. Two curves:

* **plan size**: ``--plans`` plans of N independent echo steps for each N of ``--sizes`` (1, 8, 32, 128);
* **registered agents**: with N other agents' cards in the registry for each N of ``--cards`` (10, 100,
  1000), ``--plans`` plans of ``--card-plan-steps`` steps, so discovery has N cards to look through.

Each point reports, per plan, the orchestrator's and the worker's CPU (from /proc) and the growth of Redis's
``used_memory`` (what a task leaves behind), and the marginal cost of each: per unit of N at the first point,
then per added unit between neighbouring points. ``growth`` divides the marginal cost at the last point by the
one at the second: about 1 (or less) is linear or better, a figure growing with N is worse than linear.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import uuid
from typing import Any

import anyio
from a2a.client import ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import new_data_part, new_text_message
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentSkill, Role, SendMessageRequest, TaskState

from podium.bench.fanout import plan
from podium.bench.runner import Progress, emit, measure_with_redis
from podium.bench.scale import _Replicas
from podium.bus.a2a_client import BusClient
from podium.bus.binding import bus_interface
from podium.bus.connection import connect
from podium.bus.keys import Keys
from podium.registry.store import Registry

MAX_SIZE = 128
KEYS = ("orchestrator_cpu_ms", "worker_cpu_ms", "redis_kb")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="Redis to use (default: a private redis-server)")
    parser.add_argument("--sizes", default="1,8,32,128", help="plan sizes in steps, ascending (1,8,32,128)")
    parser.add_argument(
        "--cards", default="10,100,1000", help="other agents registered, ascending (10,100,1000)"
    )
    parser.add_argument(
        "--card-plan-steps", type=int, default=8, help="steps per plan on the cards curve (8)"
    )
    parser.add_argument(
        "--plans", type=int, default=20, help="plans per point (20: fewer leave the 10 ms CPU ticks as noise)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _ascending(text: str, most: int | None = None) -> list[int] | None:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        return None
    if (
        not values
        or values[0] < 1
        or values != sorted(set(values))
        or (most is not None and values[-1] > most)
    ):
        return None
    return values


def run(args: argparse.Namespace) -> int:
    sizes, cards = _ascending(args.sizes, MAX_SIZE), _ascending(args.cards)
    problems = [
        (sizes is None, f"--sizes must be ascending whole numbers from 1 to {MAX_SIZE}, e.g. 1,8,32,128"),
        (cards is None, "--cards must be ascending whole numbers from 1, e.g. 10,100,1000"),
        (args.plans < 1, "--plans must be at least 1"),
        (not 1 <= args.card_plan_steps <= MAX_SIZE, f"--card-plan-steps must be from 1 to {MAX_SIZE}"),
    ]
    for bad, message in problems:
        if bad:
            print(f"podium bench cost: {message}", file=sys.stderr)
            return 2
    args.size_list, args.card_list = sizes, cards
    result = measure_with_redis("cost", args, _run_against, (RuntimeError,))
    if result is None:
        return 2
    lines = [f"cost per plan ({result['plans']} plans per point); marginal cost per added step or card:"]
    for curve, unit in (("sizes", "steps"), ("cards", "cards")):
        for p in result[curve]:
            lines.append(
                f"  {p['n']:5d} {unit:5s}  orchestrator {p['orchestrator_cpu_ms']:8.2f} ms ({p['orchestrator_cpu_ms_per']:.3f}/unit)"
                f"  worker {p['worker_cpu_ms']:8.2f} ms ({p['worker_cpu_ms_per']:.3f}/unit)"
                f"  redis {p['redis_kb']:8.1f} kB ({p['redis_kb_per']:.3f}/unit)"
            )
        lines.append(f"  growth of the marginal cost, last/second point: {result[f'{curve}_growth']}")
    emit(result, args.json, lines)
    return 0


def _other_card(namespace: str, i: int) -> AgentCard:
    name = f"other{i}"
    return AgentCard(
        name=name,
        description=f"a registered agent the benchmark's plans never call ({i})",
        version="1",
        supported_interfaces=[bus_interface(namespace, name)],
        capabilities=AgentCapabilities(),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id=f"skill{i}", name=f"skill {i}", description=f"does thing {i}", tags=[f"t{i}"])],
    )


async def _point(
    redis: Any, client: Any, replicas: _Replicas, n: int, steps: int, args: argparse.Namespace, tag: str
) -> dict[str, Any]:
    info = await redis.info("memory")
    cpu = {name: replicas.cpu_s(name) for name in ("orchestrator", "echo")}
    for i in range(args.plans):
        message = new_text_message("cost", role=Role.ROLE_USER)
        message.parts.append(new_data_part({"plan": plan(steps, 0, hash((tag, n, i)) % 10**9)}))
        task = None
        async for event in client.send_message(SendMessageRequest(message=message)):
            task = event.task
        if task is None or task.status.state != TaskState.TASK_STATE_COMPLETED:
            raise RuntimeError(
                f"a plan of {steps} steps did not complete: {task.status if task else 'no task'}"
            )
    await anyio.sleep(0.2)  # let the last acks and trace writes land before memory is read
    used = (await redis.info("memory"))["used_memory"] - info["used_memory"]
    return {
        "n": n,
        "steps": steps,
        "orchestrator_cpu_ms": round(
            (replicas.cpu_s("orchestrator") - cpu["orchestrator"]) * 1000 / args.plans, 3
        ),
        "worker_cpu_ms": round((replicas.cpu_s("echo") - cpu["echo"]) * 1000 / args.plans, 3),
        "redis_kb": round(max(used, 0) / 1024 / args.plans, 3),
    }


def _marginals(points: list[dict[str, Any]]) -> dict[str, float | None]:
    """Add each point's marginal cost (``<key>_per``); return the growth of each, last over second."""
    for key in KEYS:
        points[0][f"{key}_per"] = round(points[0][key] / points[0]["n"], 4)
        for before, p in itertools.pairwise(points):
            p[f"{key}_per"] = round((p[key] - before[key]) / (p["n"] - before["n"]), 4)
    growth: dict[str, float | None] = {}
    for key in KEYS:
        first, last = points[min(1, len(points) - 1)][f"{key}_per"], points[-1][f"{key}_per"]
        growth[key] = round(last / first, 3) if first > 0 else None
    return growth


async def _run_against(args: argparse.Namespace, redis_url: str, progress: Progress) -> dict[str, Any]:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    keys = Keys(namespace)
    progress.say("starting podium agent orchestrator and podium agent echo")
    redis = connect(redis_url)
    card = AgentCard(name="orchestrator", supported_interfaces=[bus_interface(namespace, "orchestrator")],
                     capabilities=AgentCapabilities())  # fmt: skip
    try:
        with _Replicas(redis_url, namespace, 1, 16) as replicas:
            async with BusClient(redis, keys, default_timeout=600) as bus:
                factory = ClientFactory(
                    ClientConfig(streaming=False, supported_protocol_bindings=["redis-streams"])
                )
                bus.register(factory)
                client = factory.create(card)
                await _point(redis, client, replicas, 1, 1, args, "warm")  # connections and code paths
                sizes = []
                for n in args.size_list:
                    progress.say(f"plans of {n} steps")
                    sizes.append(await _point(redis, client, replicas, n, n, args, "size"))
                registry, registered = Registry(redis, keys), 0
                cards = []
                for n in args.card_list:
                    for i in range(registered, n):
                        await registry.register(_other_card(namespace, i), f"bench-{i}", ttl=3600)
                    registered = n
                    progress.say(f"{n} other agents registered")
                    cards.append(
                        await _point(redis, client, replicas, n, args.card_plan_steps, args, "cards")
                    )
                await client.close()
    finally:
        await redis.aclose()
    return {
        "benchmark": "cost",
        "plans": args.plans,
        "card_plan_steps": args.card_plan_steps,
        "sizes": sizes,
        "sizes_growth": _marginals(sizes),
        "cards": cards,
        "cards_growth": _marginals(cards),
    }
