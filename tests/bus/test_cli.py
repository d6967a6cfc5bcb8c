"""The bus's commands as real processes: ``podium bench bus`` and ``podium dlq``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from podium.bus import Envelope, Keys, StreamBus
from podium.bus.connection import connect
from podium.bus.streams import dead_letter_fields
from tests.support import CI, REDIS_SERVER, ROOT

pytestmark = pytest.mark.real_redis


def podium(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "podium.agents.cli", *args]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=90, env=full_env)


@pytest.mark.skipif(
    REDIS_SERVER is None and not CI, reason="needs redis-server for the private benchmark server"
)
def test_bench_bus_prints_one_json_object() -> None:
    done = podium("bench", "bus", "--messages", "2000", "--rounds", "1", "--json", "--redis-url", "")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {
        "benchmark", "messages", "batch", "payload_bytes", "concurrency", "rounds", "redis_version",
        "podium_seconds", "raw_seconds", "podium_msgs_per_s", "raw_msgs_per_s", "ratio", "redis",
    }  # fmt: skip
    assert (result["benchmark"], result["messages"], result["rounds"], result["redis"]) == (
        "bus",
        2000,
        1,
        "private",
    )
    assert result["batch"] >= 1 and result["concurrency"] >= 1 and result["payload_bytes"] > 0
    assert re.fullmatch(r"\d+\.\d+\.\d+", result["redis_version"])
    # The rates are the message count over the measured seconds (rounded as printed), the ratio theirs.
    for loop in ("podium", "raw"):
        assert result[f"{loop}_seconds"] > 0
        rate = result["messages"] / result[f"{loop}_seconds"]
        assert result[f"{loop}_msgs_per_s"] == pytest.approx(rate, rel=1e-2)
    assert result["ratio"] == pytest.approx(result["podium_msgs_per_s"] / result["raw_msgs_per_s"], abs=2e-3)
    assert "private redis-server" in done.stderr  # progress goes to stderr, the JSON alone to stdout


def test_bench_without_redis_server_says_how_to_install_it() -> None:
    done = podium("bench", "bus", "--redis-url", "", env={"PATH": "/nonexistent"})
    assert done.returncode == 2 and "apt-get install redis-server" in done.stderr


def test_bench_lists_benchmarks_and_rejects_bad_arguments() -> None:
    done = podium("bench", "--help")
    assert done.returncode == 0 and "bus" in done.stdout and "hop" in done.stdout
    done = podium("bench", "bus", "--messages", "0", "--redis-url", "redis://127.0.0.1:1/0")
    assert done.returncode == 2 and "--messages" in done.stderr


@pytest.mark.anyio
async def test_dlq_lists_and_replays(redis_url: str, keys: Keys) -> None:
    client = connect(redis_url)
    try:
        bus = StreamBus(client, keys)
        env = Envelope(method="SendMessage", attempt=3)
        fields = dead_letter_fields(env.encode(), "RuntimeError: boom", 5, "worker-1", "1-1")
        letter_id = (await client.xadd(keys.dlq("worker"), fields)).decode()
        await client.xadd(keys.dlq("worker"), dead_letter_fields("{bad", "invalid envelope", 1, "w", "1-2"))
        common = ["--redis-url", redis_url, "--namespace", keys.namespace]

        done = podium("dlq", *common, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["agents"] == {"worker": 2}

        done = podium("dlq", "worker", *common, "--json")
        assert done.returncode == 0, done.stderr
        letters = json.loads(done.stdout)["dead_letters"]
        assert [(d["id"], d["error"], d["attempts"]) for d in letters[:1]] == [
            (letter_id, "RuntimeError: boom", 5)
        ]
        assert letters[0]["envelope_id"] == env.id and letters[1]["method"] is None

        done = podium("dlq", "worker", *common)
        assert done.returncode == 0 and "attempts=5" in done.stdout and "RuntimeError: boom" in done.stdout

        done = podium("dlq", "worker", *common, "--replay", letter_id, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"agent": "worker", "replayed": 1}
        ((_, replayed),) = await bus.read(keys.inbox("worker"), "0", block_ms=None)
        assert isinstance(replayed, Envelope) and replayed.id == env.id and replayed.attempt == 0
        assert [d.envelope for d in await bus.dlq_list("worker")] == ["{bad"]
    finally:
        await client.aclose()


def test_dlq_needs_a_redis_url() -> None:
    done = podium("dlq", "worker", "--redis-url", "")
    assert done.returncode == 2 and "REDIS_URL" in done.stderr
