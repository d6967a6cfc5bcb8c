"""The compiled fast parts (uvloop, hiredis, the lane, httptools) and the pure-Python path each switch leaves."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import uvloop
from redis._parsers import _AsyncHiredisParser
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from podium.bus import speedups
from podium.bus.autopipeline import coalesced
from podium.bus.connection import connect
from podium.bus.lane import BlockingReads, blocking_reads
from tests.support import ROOT

SWITCHES = (
    "PODIUM_PURE_PYTHON",
    "PODIUM_NO_UVLOOP",
    "PODIUM_NO_HIREDIS",
    "PODIUM_NO_LANE",
    "PODIUM_NO_HTTPTOOLS",
)


async def _loop_and_parser(redis_url: str) -> tuple[type, type, bool, bool]:
    """The loop, the reply parser, whether commands are packed by hiredis, and whether the auto-pipeline and
    blocking reads drive connections of their own (bus.lane)."""
    redis = connect(redis_url)
    try:
        await redis.ping()
        conn = await redis.connection_pool.get_connection()
        parser = type(conn._parser)
        packed_by_hiredis = type(conn).pack_command is not AsyncConnection.pack_command
        await redis.connection_pool.release(conn)
        pipe = coalesced(redis)
        await pipe.ping()
        on_lane = pipe._lane is not None and isinstance(blocking_reads(redis), BlockingReads)
        return type(asyncio.get_running_loop()), parser, packed_by_hiredis, on_lane
    finally:
        await redis.aclose()


def test_fast_parts_are_used_by_default(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in SWITCHES:
        monkeypatch.delenv(var, raising=False)
    loop, parser, packed_by_hiredis, on_lane = speedups.run(_loop_and_parser, redis_url)
    assert issubclass(loop, uvloop.Loop) and parser is _AsyncHiredisParser and packed_by_hiredis and on_lane
    assert speedups.uvicorn_http() == "httptools"
    assert speedups.describe() == "uvloop on, hiredis on, lane on, httptools on"


@pytest.mark.parametrize("var", SWITCHES)
def test_each_switch_leaves_the_pure_python_part(
    var: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for other in SWITCHES:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(var, "1")
    loop, parser, packed_by_hiredis, on_lane = speedups.run(_loop_and_parser, redis_url)
    everything = var == "PODIUM_PURE_PYTHON"
    no_hiredis = everything or var == "PODIUM_NO_HIREDIS"
    assert issubclass(loop, uvloop.Loop) is not (everything or var == "PODIUM_NO_UVLOOP")
    assert (parser is _AsyncHiredisParser) is not no_hiredis
    assert packed_by_hiredis is not no_hiredis
    assert on_lane is not (no_hiredis or var == "PODIUM_NO_LANE")  # the lane parses with hiredis
    assert (speedups.uvicorn_http() == "h11") is (everything or var == "PODIUM_NO_HTTPTOOLS")


@pytest.mark.parametrize("base", [AsyncConnection, SSLConnection, UnixDomainSocketConnection])
def test_hiredis_packs_the_bytes_redis_py_itself_would_send(base: type) -> None:
    """The hiredis packer writes what redis-py's own asyncio packer writes, command by command and for a
    pipeline, and refuses what it refuses (with redis-py's error)."""
    cls = speedups.hiredis_packing(base)
    assert issubclass(cls, base) and speedups.hiredis_packing(base) is cls
    kwargs = {"path": "/tmp/x.sock"} if base is UnixDomainSocketConnection else {}
    ours, theirs = cls(**kwargs), base(**kwargs)
    commands = [
        ("XADD", "stream:{é}", "MAXLEN", "~", 1000, "*", b"e", b'{"v":1}'),
        ("CONFIG GET", "maxmemory"),  # a command name of two words is split, as redis-py does
        ("SET", b"k", memoryview(b"value"), "PX", 1500),
        ("ZADD", "z", 12, "m", 1796692268.5567963, "n", 0.1, "o"),
        ("EVALSHA", "0" * 40, 1, "k", "x" * 10_000),
    ]
    for command in commands:
        assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command)), command
    assert b"".join(ours.pack_commands(commands)) == b"".join(theirs.pack_commands(commands))
    for bad in (None, {"a": 1}, True):
        with pytest.raises(DataError):
            ours.pack_command("SET", "k", bad)


def test_a_hop_runs_on_the_pure_python_path(redis_url: str) -> None:
    """An echo agent and its callers with every fast part off: both transports answer, as with them on."""
    cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "hop", "--redis-url", redis_url, "--requests", "3",
           "--concurrent-requests", "8", "--concurrency", "2", "--json"]  # fmt: skip
    env = {**os.environ, "PODIUM_PURE_PYTHON": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["bus_p50_ms"] > 0 and result["http_p50_ms"] > 0 and result["bus_get_p50_ms"] > 0
