"""``podium trace TASK_ID``: a task's decisions as a timeline with durations.

It reads the trace from Redis (``REDIS_URL`` or ``--redis-url``) or, without one, asks the orchestrator
(``GET /podium/trace/<id>`` on ``--url``, default http://127.0.0.1:8700), which also works for the
embedded bus of ``podium up``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import anyio
import httpx
from redis.exceptions import RedisError

from podium.agents.orchestrator.state.trace import TraceEntry, read_trace, timeline
from podium.bus.connection import connect, redact
from podium.bus.errors import ConfigError
from podium.bus.keys import Keys

DEFAULT_URL = "http://127.0.0.1:8700"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task_id", help="the task id (podium ask prints it)")
    parser.add_argument("--json", action="store_true", help="print the entries as one JSON object")
    parser.add_argument("--redis-url", default=None, help="read from this Redis (default $REDIS_URL)")
    parser.add_argument("--namespace", default=None, help="key prefix (default $PODIUM_NAMESPACE or podium)")
    parser.add_argument(
        "--url", default=None, help=f"without Redis, ask this orchestrator (default {DEFAULT_URL})"
    )
    parser.add_argument("--token", default=None, help="bearer token for --url (default $PODIUM_A2A_TOKEN)")


async def _from_redis(url: str, keys: Keys, task_id: str) -> list[TraceEntry]:
    redis = connect(url)
    try:
        return await read_trace(redis, keys, task_id)
    finally:
        await redis.aclose()


def _from_http(url: str, token: str | None, task_id: str) -> list[TraceEntry]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(
        f"{url.rstrip('/')}/podium/trace/{task_id}", headers=headers, timeout=10, trust_env=False
    )
    if response.status_code == 404:
        return []
    if response.status_code == 401:
        raise PermissionError("the orchestrator wants a token: set PODIUM_A2A_TOKEN or pass --token")
    response.raise_for_status()
    return [TraceEntry.model_validate(e) for e in response.json().get("entries", [])]


def summary(entries: list[TraceEntry]) -> list[str]:
    """One line per step: when it started (from the first entry), how long, who, how it ended."""
    if not entries:
        return []
    start = entries[0].ts
    began: dict[str, float] = {}
    lines = []
    for e in entries:
        if e.event != "step" or not e.step:
            continue
        if e.state == "started":
            began[e.step] = e.ts
        else:
            at = began.get(e.step, e.ts) - start
            took = f"{e.duration_ms / 1000:7.2f}s" if e.duration_ms is not None else "      -"
            lines.append(f"  {e.step:<20} +{at:7.3f}s {took}  {e.state:<9} {e.agent or ''}")
    return lines


def run(args: argparse.Namespace) -> int:
    redis_url = args.redis_url or os.environ.get("REDIS_URL")
    url = args.url or os.environ.get("PODIUM_URL") or DEFAULT_URL
    where = redact(redis_url) if redis_url else url
    try:
        if redis_url:
            keys = Keys(args.namespace) if args.namespace else Keys.from_env()
            entries = anyio.run(_from_redis, redis_url, keys, args.task_id)
        else:
            entries = _from_http(url, args.token or os.environ.get("PODIUM_A2A_TOKEN"), args.task_id)
    except (ConfigError, ValueError) as exc:
        print(f"podium trace: {exc}", file=sys.stderr)
        return 2
    except (RedisError, OSError, httpx.HTTPError, PermissionError) as exc:
        print(f"podium trace: cannot read the trace from {where}: {exc}", file=sys.stderr)
        return 1
    if not entries:
        print(f"podium trace: no trace for task {args.task_id} at {where}", file=sys.stderr)
        return 1
    if args.json:
        out: dict[str, Any] = {"taskId": args.task_id, "entries": [e.dump() for e in entries]}
        print(json.dumps(out, indent=2))
        return 0
    print(f"trace of task {args.task_id} ({len(entries)} entries)")
    for line in timeline(entries):
        print(line)
    steps = summary(entries)
    if steps:
        print("\nsteps:")
        print("\n".join(steps))
    return 0
