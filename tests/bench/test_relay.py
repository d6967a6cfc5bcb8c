"""`podium bench relay` as a user runs it: both loops on a real Redis, one JSON object."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from tests.support import ROOT


def test_bench_relay_json_reports_both_loops_and_the_coalesced_writes(redis_url: str) -> None:
    cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "relay", "--redis-url", redis_url, "--messages", "300",
           "--batch", "50", "--rounds", "1", "--compare-direct", "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["benchmark"] == "relay" and result["messages"] == 300
    for key in ("podium_msgs_per_s", "raw_msgs_per_s", "direct_msgs_per_s", "podium_cpu_us_per_msg"):
        assert result[key] > 0, key
    # (both rounded in the JSON: the rate to 0.1 msg/s, the time to 0.1 ms)
    assert math.isclose(result["podium_msgs_per_s"], 300 / result["podium_seconds"], rel_tol=0.01)
    assert result["ratio"] == round(result["podium_msgs_per_s"] / result["raw_msgs_per_s"], 3)
    assert result["direct_ratio"] == round(result["direct_msgs_per_s"] / result["raw_msgs_per_s"], 3)
    # Every message's reply and at least one ack went out through the auto-pipeline, which carried them in
    # fewer round trips than commands (300 replies cannot all have gone alone).
    assert result["podium_write_commands"] >= 301
    assert 0 < result["podium_write_round_trips"] < result["podium_write_commands"]
    assert "round 1/1: podium consumer" in done.stderr  # progress on stderr, JSON alone on stdout


def test_bench_relay_rejects_bad_arguments() -> None:
    cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "relay", "--messages", "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "--messages must be at least 1" in done.stderr
