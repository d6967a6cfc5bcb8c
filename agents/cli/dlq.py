"""``podium dlq [AGENT] [--replay [ID ...]] [--json]``: list dead letters, or replay them to the agent's inbox.

Without AGENT it lists the agents that have dead letters and how many. Dead letters live in Redis, so this
needs ``REDIS_URL`` (or ``--redis-url``): the embedded bus exists only inside the ``podium up`` process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from typing import Any

import anyio
from redis.exceptions import RedisError

from podium.bus.connection import connect, redact
from podium.bus.errors import ConfigError
from podium.bus.keys import DEFAULT_NAMESPACE, Keys, validate_name
from podium.bus.streams import DeadLetter, StreamBus, text


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("agent", nargs="?", help="the agent whose dead letters to show or replay")
    parser.add_argument(
        "--replay",
        nargs="*",
        metavar="ID",
        default=None,
        help="re-publish dead letters to the agent's inbox (all of them, or these DLQ entry ids)",
    )
    parser.add_argument("--count", type=int, default=100, help="how many to list (default 100)")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"), help="default: $REDIS_URL")
    parser.add_argument(
        "--namespace",
        default=os.environ.get("PODIUM_NAMESPACE") or DEFAULT_NAMESPACE,
        help="key prefix (default: $PODIUM_NAMESPACE or 'podium')",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _letter_json(d: DeadLetter) -> dict[str, Any]:
    env = d.decode()
    return {
        "id": d.id,
        "entry_id": d.entry_id,
        "error": d.error,
        "attempts": d.attempts,
        "consumer": d.consumer,
        "time": d.time,
        "method": env.method if env else None,
        "envelope_id": env.id if env else None,
        "envelope": d.envelope,
    }


async def _agents(bus: StreamBus) -> dict[str, int]:
    """Agents that have a DLQ stream, with its length."""
    found: dict[str, int] = {}
    async for key in bus.redis.scan_iter(match=bus.keys.dlq("*"), count=500):
        name = text(key)
        found[bus.keys.agent_of_stream(name)] = int(await bus.redis.xlen(name))
    return dict(sorted(found.items()))


async def _main(args: argparse.Namespace) -> int:
    client = connect(args.redis_url)
    try:
        bus = StreamBus(client, Keys(args.namespace))
        if not args.agent:
            if args.replay is not None:
                raise ConfigError("--replay needs an AGENT")
            counts = await _agents(bus)
            if args.json:
                print(json.dumps({"namespace": args.namespace, "agents": counts}))
            elif not counts:
                print(f"no dead letters in namespace {args.namespace!r}")
            else:
                for agent, n in counts.items():
                    print(f"{agent}\t{n}")
            return 0
        if args.replay is not None:
            n = await bus.dlq_replay(args.agent, args.replay or None)
            if args.json:
                print(json.dumps({"agent": args.agent, "replayed": n}))
            else:
                print(f"replayed {n} dead letter(s) to {bus.keys.inbox(args.agent)}")
            return 0
        letters = await bus.dlq_list(args.agent, count=args.count)
        if args.json:
            print(json.dumps({"agent": args.agent, "dead_letters": [_letter_json(d) for d in letters]}))
            return 0
        if not letters:
            print(f"no dead letters for {args.agent}")
        for d in letters:
            env = d.decode()
            when = dt.datetime.fromtimestamp(d.time, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            what = f"{env.method} {env.id}" if env else "(malformed entry)"
            print(f"{d.id}  {when}  attempts={d.attempts}  consumer={d.consumer}  {what}\n    {d.error}")
        return 0
    finally:
        await client.aclose()


def run(args: argparse.Namespace) -> int:
    """List or replay dead letters; returns 2 on bad arguments or when Redis cannot be reached."""
    if not args.redis_url:
        print(
            "podium dlq: set REDIS_URL or pass --redis-url; the embedded bus lives only inside `podium up`",
            file=sys.stderr,
        )
        return 2
    try:
        if args.agent:
            validate_name("agent", args.agent)
        return int(anyio.run(_main, args))
    except (ConfigError, ValueError) as exc:
        print(f"podium dlq: {exc}", file=sys.stderr)
        return 2
    except RedisError as exc:
        print(f"podium dlq: Redis at {redact(args.redis_url)}: {exc}", file=sys.stderr)
        return 2
