"""``podium bench bus``: messages per second through Podium's bus against the same loop in raw redis-py.

Both loops run in one process against the same Redis, one after the other, with a producer and one
consumer running concurrently: the producer appends ``--batch`` entries per pipelined round trip, the
consumer reads up to ``--batch`` entries per XREADGROUP, parses each JSON document and acks them.

* podium: ``Envelope`` objects through ``StreamBus.publish_many`` to a ``Consumer`` (handler, ack);
* raw: ``json.dumps`` of a dict of the same size, ``XADD`` pipelined, ``XREADGROUP``, ``json.loads``, ``XACK``.

The result is the ratio podium/raw, which says what Podium's delivery guarantees cost on this machine.
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
from podium.bus.connection import connect
from podium.bus.consumer import Consumer, Delivery
from podium.bus.envelope import Envelope
from podium.bus.errors import BusError
from podium.bus.keys import Keys
from podium.bus.streams import StreamBus

AGENT = "bench"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="Redis to measure against (default: $REDIS_URL, else a private redis-server)",
    )
    parser.add_argument("--messages", type=int, default=20_000, help="messages per loop (default 20000)")
    parser.add_argument(
        "--batch", type=int, default=100, help="entries per publish and per read (default 100)"
    )
    parser.add_argument(
        "--payload", type=int, default=256, help="bytes of text in each message (default 256)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="Podium consumer concurrency (default: --batch, so a read may take a whole batch)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of each loop; the best is kept (default 3)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _envelope(i: int, text: str) -> Envelope:
    return Envelope(method="SendMessage", payload={"n": i, "text": text}, sender="bench", reply_to="r")


def _raw_document(i: int, text: str) -> dict[str, Any]:
    """A dict with the fields and sizes of an encoded envelope, for the raw loop."""
    return {
        "v": 1, "id": uuid.uuid4().hex, "kind": "request", "method": "SendMessage",
        "payload": {"n": i, "text": text}, "sender": "bench", "reply_to": "r", "correlation_id": None,
        "deadline": None, "traceparent": None, "attempt": 0,
        "budget": {"hops": None, "tokens": None, "deadline": None, "spend": None},
        "metadata": {}, "created": time.time(),
    }  # fmt: skip


async def _podium(url: str, n: int, batch: int, text: str, concurrency: int, progress: Progress) -> float:
    client = connect(url)
    bus = StreamBus(client, Keys(f"bench{uuid.uuid4().hex[:8]}"), maxlen=None)
    done = anyio.Event()
    handled = 0

    async def handler(env: Envelope, delivery: Delivery) -> None:
        nonlocal handled
        handled += 1
        if handled == n:
            done.set()

    consumer = Consumer(bus, AGENT, handler, consumer="bench-1", batch=batch, concurrency=concurrency)
    inbox = bus.keys.inbox(AGENT)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(consumer.run)
            start = time.perf_counter()
            for i in range(0, n, batch):
                await bus.publish_many(inbox, [_envelope(j, text) for j in range(i, min(n, i + batch))])
                progress.tick("podium", handled, n)
            await done.wait()
            await consumer.stop()  # returns once the last acks are written
            elapsed = time.perf_counter() - start
            if consumer.acked != n:
                raise BusError(f"podium loop acked {consumer.acked} of {n} messages")
        await client.delete(inbox)
        return elapsed
    finally:
        await client.aclose()


async def _raw(url: str, n: int, batch: int, text: str, progress: Progress) -> float:
    client: Any = Redis.from_url(url)  # redis-py as a user writes it: no Podium settings or speedups
    stream, group = f"bench{uuid.uuid4().hex[:8]}:raw", "raw"
    await client.xgroup_create(stream, group, id="0", mkstream=True)
    consumed = 0

    async def consume() -> None:
        nonlocal consumed
        while consumed < n:
            reply = await client.xreadgroup(group, "raw-1", {stream: ">"}, count=batch, block=1000)
            if not reply:
                continue
            entries = reply[0][1]
            for _, fields in entries:
                json.loads(fields[b"e"])
            await client.xack(stream, group, *[i for i, _ in entries])
            consumed += len(entries)

    try:
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            for i in range(0, n, batch):
                async with client.pipeline(transaction=False) as pipe:
                    for j in range(i, min(n, i + batch)):
                        pipe.xadd(stream, {"e": json.dumps(_raw_document(j, text))})
                    await pipe.execute()
                progress.tick("raw", consumed, n)
        elapsed = time.perf_counter() - start
        await client.delete(stream)
        return elapsed
    finally:
        await client.aclose()


async def _measure(args: argparse.Namespace, url: str, progress: Progress) -> dict[str, Any]:
    text = "x" * args.payload
    warm = min(2_000, args.messages)
    progress.say(f"warming up ({warm} messages each)")
    await _podium(url, warm, args.batch, text, args.concurrency, Progress(quiet=True))
    await _raw(url, warm, args.batch, text, Progress(quiet=True))
    raw_s = podium_s = float("inf")
    for r in range(1, args.rounds + 1):
        # Alternating keeps both loops exposed to the same background load; the best round of each counts.
        progress.say(
            f"round {r}/{args.rounds}: raw redis-py loop, {args.messages} messages, batch {args.batch}"
        )
        raw_s = min(raw_s, await _raw(url, args.messages, args.batch, text, progress))
        progress.say(
            f"round {r}/{args.rounds}: podium bus loop, {args.messages} messages, batch {args.batch}"
        )
        podium_s = min(
            podium_s, await _podium(url, args.messages, args.batch, text, args.concurrency, progress)
        )
    client = connect(url)
    try:
        version = str((await client.info("server")).get("redis_version", "?"))
    finally:
        await client.aclose()
    podium_rate, raw_rate = args.messages / podium_s, args.messages / raw_s
    return {
        "benchmark": "bus",
        "messages": args.messages,
        "batch": args.batch,
        "payload_bytes": len(_envelope(0, text).encode()),
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "redis_version": version,
        "podium_seconds": round(podium_s, 4),
        "raw_seconds": round(raw_s, 4),
        "podium_msgs_per_s": round(podium_rate, 1),
        "raw_msgs_per_s": round(raw_rate, 1),
        "ratio": round(podium_rate / raw_rate, 3),
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; returns 2 for bad arguments or an unusable Redis, else 0."""
    if args.concurrency is None:
        args.concurrency = args.batch
    for name in ("messages", "batch", "concurrency", "rounds"):
        if getattr(args, name) < 1:
            print(f"podium bench bus: --{name} must be at least 1", file=sys.stderr)
            return 2
    result = measure_with_redis("bus", args, _measure)
    if result is None:
        return 2
    lines = [
        f"messages {result['messages']}, batch {result['batch']}, envelope {result['payload_bytes']} bytes, "
        f"redis {result['redis_version']}",
        f"podium  {result['podium_msgs_per_s']:>12,.0f} msgs/s",
        f"raw     {result['raw_msgs_per_s']:>12,.0f} msgs/s",
        f"ratio   {result['ratio']:>12.3f}  (podium / raw)",
    ]
    emit(result, args.json, lines)
    return 0
