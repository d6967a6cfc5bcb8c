"""The physical floor of a request/reply over Redis Streams from Python, for ``podium bench hop``.

Two processes of raw redis-py, no Podium: a server blocked in ``XREADGROUP`` that answers each request
with an ``XADD`` to the reply stream and its ``XACK`` (one pipeline), and a client that ``XADD``s a request
and takes the reply with a blocked ``XREAD``. The client prints one JSON list of latencies (ms) on stdout.

    python -m podium.bench.streams_floor server REDIS_URL PREFIX
    python -m podium.bench.streams_floor client REDIS_URL PREFIX REQUESTS
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import redis

GROUP = "floor"
STOP = b"stop"


def _streams(prefix: str) -> tuple[str, str]:
    """The request stream and this process's own reply stream."""
    return f"{prefix}:requests", f"{prefix}:replies:{os.getpid()}"


def serve(url: str, prefix: str) -> None:
    """Answer requests until one says ``stop``; prints ``ready`` once the group exists."""
    requests, _ = _streams(prefix)
    r = redis.Redis.from_url(url, socket_timeout=None)  # blocked reads wait as long as they must
    try:
        r.xgroup_create(requests, GROUP, id="$", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    print("ready", flush=True)
    while True:
        batch: Any = r.xreadgroup(GROUP, "server", {requests: ">"}, count=1, block=0)
        for _, entries in batch:
            for entry_id, fields in entries:
                if fields.get(b"op") == STOP:
                    return
                pipe = r.pipeline(transaction=False)
                pipe.xadd(fields[b"reply"], {b"id": fields[b"id"], b"body": fields[b"body"]})
                pipe.xack(requests, GROUP, entry_id)
                pipe.execute()


def measure(url: str, prefix: str, n: int, warmup: int = 20) -> list[float]:
    """Latencies (ms) of ``n`` sequential request/replies after ``warmup`` unmeasured ones."""
    requests, replies = _streams(prefix)
    r = redis.Redis.from_url(url, socket_timeout=None)  # blocked reads wait as long as they must
    body = b'{"jsonrpc":"2.0","method":"GetTask","params":{"id":"00000000000000000000000000000000"}}'
    last = "0-0"  # a fresh stream: "$" would miss a reply written before the first XREAD
    out: list[float] = []
    for i in range(warmup + n):
        start = time.perf_counter()
        r.xadd(requests, {b"id": str(i), b"reply": replies, b"body": body})
        while True:
            got: Any = r.xread({replies: last}, count=1, block=0)
            last = got[0][1][-1][0]
            if got[0][1][-1][1][b"id"] == str(i).encode():
                break
        if i >= warmup:
            out.append((time.perf_counter() - start) * 1000)
    r.delete(replies)
    return out


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "server":
        serve(argv[1], argv[2])
        return 0
    if len(argv) >= 3 and argv[0] == "client":
        print(json.dumps(measure(argv[1], argv[2], int(argv[3]))), flush=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
