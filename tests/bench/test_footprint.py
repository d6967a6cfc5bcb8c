"""`podium bench footprint` as a user runs it: real processes measured from /proc, one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.proctree import needs_proc
from tests.support import ROOT


@needs_proc
def test_bench_footprint_json_reports_echo_the_bare_baseline_and_each_agent(redis_url: str) -> None:
    cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "footprint", "--redis-url", redis_url, "--agents", "writer",
           "--no-up", "--settle", "0", "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["benchmark"] == "footprint" and "up" not in result
    for key in ("echo_rss_mb", "bare_rss_mb", "echo_ready_s", "bare_ready_s"):
        assert result[key] > 0, key
    assert result["rss_ratio"] == round(result["echo_rss_mb"] / result["bare_rss_mb"], 3)
    writer = result["agents"]["writer"]
    assert list(result["agents"]) == ["writer"]
    assert writer["processes"] == 1 and writer["rss_mb"] == writer["main_rss_mb"] > 0  # its tools in process
    assert writer["rss_ratio"] == round(writer["rss_mb"] / result["bare_rss_mb"], 3)
    assert "podium agent writer" in done.stderr  # progress on stderr, JSON alone on stdout


def test_bench_footprint_rejects_bad_arguments() -> None:
    cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "footprint", "--settle", "-1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "--settle must be at least 0" in done.stderr


@needs_proc
def test_bench_footprint_engines_measures_one_agent_per_engine_against_offline(redis_url: str) -> None:
    cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "footprint", "--redis-url", redis_url, "--agents", "",
           "--no-up", "--settle", "0", "--engines", "offline,openai", "--engine-agent", "writer", "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["engine_agent"] == "writer" and list(result["engines"]) == ["offline", "openai"]
    offline, openai = result["engines"]["offline"], result["engines"]["openai"]
    assert offline["offline_ratio"] == 1.0 and offline["rss_mb"] > 0
    assert openai["offline_ratio"] == round(openai["rss_mb"] / offline["rss_mb"], 3)
    assert openai["rss_ratio"] == round(openai["rss_mb"] / result["bare_rss_mb"], 3)
    assert "podium agent writer with engine openai" in done.stderr


def test_bench_footprint_rejects_an_unknown_engine() -> None:
    cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "footprint", "--engines", "offline,gemini"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "unknown engine 'gemini'" in done.stderr
