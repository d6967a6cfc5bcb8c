"""`podium bench hop` as a user runs it: a real echo agent, both transports, one JSON object."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from tests.support import ROOT


def test_bench_hop_json_reports_both_transports(redis_url: str) -> None:
    cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "hop", "--redis-url", redis_url, "--requests", "5",
           "--concurrent-requests", "16", "--concurrency", "4", "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {
        "requests", "concurrent_requests", "concurrency", "redis",
        "bus_p50_ms", "bus_p99_ms", "bus_get_p50_ms", "bus_rps",
        "http_p50_ms", "http_p99_ms", "http_get_p50_ms", "http_rps",
        "p50_ratio", "rps_ratio", "get_p50_ratio",
        "floor_p50_ms", "floor_p99_ms", "floor_get_p50_ms", "bus_overhead_ms", "http_overhead_ms", "overhead_ratio",
        "streams_floor_p50_ms", "streams_floor_p99_ms", "bus_get_overhead_ms", "get_overhead_x_floor",
        "send_overhead_x_floor",
    }  # fmt: skip
    assert (result["requests"], result["concurrent_requests"], result["concurrency"]) == (5, 16, 4)
    assert result["redis"] == redis_url
    for transport in ("bus", "http"):  # measured latencies and rates: finite, positive, ordered
        p50, p99 = result[f"{transport}_p50_ms"], result[f"{transport}_p99_ms"]
        assert all(isinstance(v, float) and math.isfinite(v) for v in (p50, p99, result[f"{transport}_rps"]))
        assert 0 < p50 <= p99
        assert 0 < result[f"{transport}_get_p50_ms"] and result[f"{transport}_rps"] > 0
    assert result["p50_ratio"] == result["bus_p50_ms"] / result["http_p50_ms"]
    assert result["rps_ratio"] == result["bus_rps"] / result["http_rps"]
    assert result["get_p50_ratio"] == result["bus_get_p50_ms"] / result["http_get_p50_ms"]
    # the floor (no transport) and each transport's overhead above it
    assert 0 < result["floor_p50_ms"] <= result["floor_p99_ms"] and result["floor_get_p50_ms"] > 0
    for transport in ("bus", "http"):
        assert result[f"{transport}_overhead_ms"] == result[f"{transport}_p50_ms"] - result["floor_p50_ms"]
    assert result["overhead_ratio"] == result["bus_overhead_ms"] / result["http_overhead_ms"]
    # the raw Streams request/reply floor (two redis-py processes) and the bus overhead as multiples of it
    assert 0 < result["streams_floor_p50_ms"] <= result["streams_floor_p99_ms"]
    assert result["bus_get_overhead_ms"] == result["bus_get_p50_ms"] - result["floor_get_p50_ms"]
    assert result["get_overhead_x_floor"] == result["bus_get_overhead_ms"] / result["streams_floor_p50_ms"]
    assert result["send_overhead_x_floor"] == result["bus_overhead_ms"] / result["streams_floor_p50_ms"]
    assert "starting podium agent echo" in done.stderr  # progress goes to stderr, JSON alone to stdout


def test_bench_hop_rejects_bad_arguments() -> None:
    cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "hop", "--concurrency", "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "--concurrency must be at least 1" in done.stderr


def test_streams_floor_client_gets_its_own_replies(redis_url: str) -> None:
    """The floor's two raw redis-py processes answer every request, each client on its own reply stream."""
    server = subprocess.Popen(
        [sys.executable, "-m", "podium.bench.streams_floor", "server", redis_url, "t-floor"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        for _ in range(2):  # a second client must not read the first one's replies
            cmd = [sys.executable, "-m", "podium.bench.streams_floor", "client", redis_url, "t-floor", "7"]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
            assert done.returncode == 0, done.stderr
            latencies = json.loads(done.stdout)
            assert len(latencies) == 7 and all(v > 0 for v in latencies)
    finally:
        server.terminate()
        server.wait(10)
        if server.stdout:
            server.stdout.close()
