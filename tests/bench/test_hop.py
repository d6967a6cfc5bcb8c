"""`podium bench hop` as a user runs it: a real echo agent, both transports, one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT


def test_bench_hop_json_reports_both_transports(redis_url: str) -> None:
    cmd = [sys.executable, "-m", "agents.cli", "bench", "hop", "--redis-url", redis_url, "--requests", "5",
           "--concurrent-requests", "16", "--concurrency", "4", "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in ("bus_p50_ms", "bus_p99_ms", "http_p50_ms", "http_p99_ms", "bus_rps", "http_rps"):
        assert result[key] > 0, key
    assert result["p50_ratio"] == result["bus_p50_ms"] / result["http_p50_ms"]
    assert result["rps_ratio"] == result["bus_rps"] / result["http_rps"]
    assert "starting podium agent echo" in done.stderr  # progress goes to stderr, JSON alone to stdout


def test_bench_hop_rejects_bad_arguments() -> None:
    cmd = [sys.executable, "-m", "agents.cli", "bench", "hop", "--concurrency", "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "--concurrency must be at least 1" in done.stderr
