"""``podium bench relay``: consume-and-republish, the pattern of every agent's reply path, against raw redis-py.

Both loops start from an inbox already holding ``--messages`` envelopes and run one after the other, in one
process, against the same Redis:

* podium: a ``Consumer`` with default settings whose handler answers each envelope with one reply envelope
  through ``StreamBus.publish`` to another stream; the consumer acks. Each handler publishes on its own; the
  auto-pipeline (``bus.autopipeline``) is what lets their writes share round trips.
* raw: ``XREADGROUP`` of ``--batch`` entries, ``json.loads`` of each, ``json.dumps`` of an answer of the
  same size, then one pipeline with every answer's ``XADD`` and the ``XACK`` of the batch.

Reported: messages/s of each and their ratio, and the pipelines (round trips) the podium loop's writes
took. ``--compare-direct`` also runs the podium loop with its writes sent one command per round trip, as
before auto-pipelining.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

import anyio
from redis.asyncio import Redis

from podium.bench.runner import Progress, emit, measure_with_redis
from podium.bus.autopipeline import AutoPipeline
from podium.bus.connection import connect
from podium.bus.consumer import Consumer, Delivery
from podium.bus.envelope import FIELD, Envelope, Kind
from podium.bus.errors import BusError
from podium.bus.keys import Keys
from podium.bus.streams import StreamBus

AGENT = "relay"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="Redis to measure against (default: $REDIS_URL, else a private redis-server)",
    )
    parser.add_argument("--messages", type=int, default=20_000, help="messages per loop (default 20000)")
    parser.add_argument(
        "--batch", type=int, default=100, help="entries per read and per pipeline in the raw loop (100)"
    )
    parser.add_argument("--payload", type=int, default=256, help="bytes of text in each message (256)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of each loop; the best is kept (default 3)"
    )
    parser.add_argument(
        "--compare-direct",
        action="store_true",
        help="also run the podium loop with one round trip per write (no auto-pipeline)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


async def _fill(client: Any, stream: str, n: int, text: str) -> None:
    """Put ``n`` request envelopes into ``stream`` (untimed)."""
    for start in range(0, n, 1000):
        async with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(n, start + 1000)):
                env = Envelope(
                    method="SendMessage", payload={"n": i, "text": text}, sender="bench", reply_to="r"
                )
                pipe.xadd(stream, {FIELD: env.encode()})
            await pipe.execute()


async def _podium(
    url: str, n: int, text: str, direct: bool, progress: Progress
) -> tuple[float, float, int, int]:
    """Wall and CPU seconds of the podium loop, and the pipelines and commands its writes took."""
    client = connect(url)
    bus = StreamBus(client, Keys(f"bench{uuid.uuid4().hex[:8]}"))
    pipeline = bus.writes
    if direct:
        bus.writes = client  # the comparison only: every write its own round trip
    out = bus.keys.reply("relay-out")
    done = anyio.Event()
    handled = 0

    async def handler(env: Envelope, delivery: Delivery) -> None:
        nonlocal handled
        await bus.publish(out, env.reply(Kind.RESPONSE, {"n": env.payload["n"], "text": env.payload["text"]}))
        handled += 1
        if handled == n:
            done.set()

    inbox = bus.keys.inbox(AGENT)
    try:
        await _fill(client, inbox, n, text)
        consumer = Consumer(bus, AGENT, handler, consumer="relay-1")  # default settings
        before = (pipeline.pipelines, pipeline.commands) if isinstance(pipeline, AutoPipeline) else (0, 0)
        async with anyio.create_task_group() as tg:
            start, cpu = time.perf_counter(), time.process_time()
            await tg.start(consumer.run)
            while not done.is_set():
                with anyio.move_on_after(1):
                    await done.wait()
                progress.tick("podium" + (" direct" if direct else ""), handled, n)
            await consumer.stop()  # returns once the last acks are written
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        if consumer.acked != n or await client.xlen(out) != n:
            raise BusError(
                f"podium loop acked {consumer.acked} and republished {await client.xlen(out)} of {n}"
            )
        after = (pipeline.pipelines, pipeline.commands) if isinstance(pipeline, AutoPipeline) else (0, 0)
        await client.delete(inbox, out)
        return elapsed, cpu, after[0] - before[0], after[1] - before[1]
    finally:
        await client.aclose()


async def _raw(url: str, n: int, batch: int, text: str, progress: Progress) -> tuple[float, float]:
    """Wall and CPU seconds of the raw loop."""
    client: Any = Redis.from_url(url)  # redis-py as a user writes it: no Podium settings or speedups
    stream, out, group = f"bench{uuid.uuid4().hex[:8]}:raw", f"bench{uuid.uuid4().hex[:8]}:out", "raw"
    try:
        await _fill(client, stream, n, text)
        await client.xgroup_create(stream, group, id="0")
        consumed = 0
        start, cpu = time.perf_counter(), time.process_time()
        while consumed < n:
            reply = await client.xreadgroup(group, "raw-1", {stream: ">"}, count=batch, block=1000)
            if not reply:
                continue
            entries = reply[0][1]
            async with client.pipeline(transaction=False) as pipe:
                for _, fields in entries:
                    request = json.loads(fields[FIELD.encode()])
                    answer = {**request, "id": os.urandom(16).hex(), "kind": "response", "sender": "relay",
                              "reply_to": None, "correlation_id": request["id"], "created": time.time(),
                              "payload": {"n": request["payload"]["n"], "text": request["payload"]["text"]}}  # fmt: skip
                    pipe.xadd(out, {FIELD: json.dumps(answer)})
                pipe.xack(stream, group, *[i for i, _ in entries])
                await pipe.execute()
            consumed += len(entries)
            progress.tick("raw", consumed, n)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        if await client.xlen(out) != n:
            raise BusError(f"raw loop republished {await client.xlen(out)} of {n}")
        await client.delete(stream, out)
        return elapsed, cpu
    finally:
        await client.aclose()


async def _measure(args: argparse.Namespace, url: str, progress: Progress) -> dict[str, Any]:
    text = "x" * args.payload
    warm = min(2_000, args.messages)
    progress.say(f"warming up ({warm} messages each)")
    await _podium(url, warm, text, False, Progress(quiet=True))
    await _raw(url, warm, args.batch, text, Progress(quiet=True))
    raw_s = podium_s = direct_s = raw_cpu = podium_cpu = float("inf")
    pipelines = commands = 0
    for r in range(1, args.rounds + 1):
        # Alternating keeps every loop exposed to the same background load; the best round of each counts.
        progress.say(f"round {r}/{args.rounds}: raw redis-py, {args.messages} messages, batch {args.batch}")
        seconds, cpu = await _raw(url, args.messages, args.batch, text, progress)
        raw_s, raw_cpu = min(raw_s, seconds), min(raw_cpu, cpu)
        progress.say(f"round {r}/{args.rounds}: podium consumer, {args.messages} messages, default settings")
        seconds, cpu, p, c = await _podium(url, args.messages, text, False, progress)
        podium_cpu = min(podium_cpu, cpu)
        if seconds < podium_s:
            podium_s, pipelines, commands = seconds, p, c
        if args.compare_direct:
            progress.say(f"round {r}/{args.rounds}: podium consumer, one round trip per write")
            direct_s = min(direct_s, (await _podium(url, args.messages, text, True, progress))[0])
    client = connect(url)
    try:
        version = str((await client.info("server")).get("redis_version", "?"))
    finally:
        await client.aclose()
    podium_rate, raw_rate = round(args.messages / podium_s, 1), round(args.messages / raw_s, 1)
    result: dict[str, Any] = {
        "benchmark": "relay",
        "messages": args.messages,
        "batch": args.batch,
        "rounds": args.rounds,
        "redis_version": version,
        "podium_seconds": round(podium_s, 4),
        "raw_seconds": round(raw_s, 4),
        "podium_msgs_per_s": podium_rate,
        "raw_msgs_per_s": raw_rate,
        "ratio": round(podium_rate / raw_rate, 3),
        # this process's CPU time per message (less sensitive to a busy machine than wall time)
        "podium_cpu_us_per_msg": round(podium_cpu / args.messages * 1e6, 1),
        "raw_cpu_us_per_msg": round(raw_cpu / args.messages * 1e6, 1),
        # the podium loop's writes (replies and acks): how many went out, in how many round trips
        "podium_write_commands": commands,
        "podium_write_round_trips": pipelines,
    }
    if args.compare_direct:
        result["direct_msgs_per_s"] = direct_rate = round(args.messages / direct_s, 1)
        result["direct_ratio"] = round(direct_rate / raw_rate, 3)
    return result


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; returns 2 for bad arguments or an unusable Redis, else 0."""
    for name in ("messages", "batch", "rounds"):
        if getattr(args, name) < 1:
            print(f"podium bench relay: --{name} must be at least 1", file=sys.stderr)
            return 2
    if args.payload < 0:
        print("podium bench relay: --payload must be at least 0", file=sys.stderr)
        return 2
    result = measure_with_redis("relay", args, _measure)
    if result is None:
        return 2
    lines = [
        f"consume and republish {result['messages']} messages, redis {result['redis_version']}",
        f"podium  {result['podium_msgs_per_s']:>12,.0f} msgs/s  (default Consumer settings; "
        f"{result['podium_write_commands']} writes in {result['podium_write_round_trips']} round trips)",
        f"raw     {result['raw_msgs_per_s']:>12,.0f} msgs/s  (one pipeline per batch of {result['batch']})",
        f"ratio   {result['ratio']:>12.3f}  (podium / raw)",
        f"CPU per message: podium {result['podium_cpu_us_per_msg']:.0f} us, raw {result['raw_cpu_us_per_msg']:.0f} us",
    ]
    if "direct_msgs_per_s" in result:
        lines.append(
            f"direct  {result['direct_msgs_per_s']:>12,.0f} msgs/s  (podium, one round trip per write; "
            f"ratio {result['direct_ratio']:.3f})"
        )
    emit(result, args.json, lines)
    return 0
