"""`podium bench scale` as a user runs it: real orchestrator and worker replicas on one Redis, one JSON
object whose rates and efficiencies follow from its own figures (never a speed)."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

import pytest

from podium.bench import scale
from tests.support import ROOT


@pytest.mark.timeout(300)
def test_bench_scale_json_reports_each_replica_count(redis_url: str) -> None:
    cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "scale", "--redis-url", redis_url, "--replicas", "1,2",
           "--plans", "4", "--steps", "1", "--work-ms", "10", "--concurrency", "2", "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=290, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["benchmark"], result["plans"], result["steps"], result["work_ms"], result["concurrency"]) == (
        "scale", 4, 1, 10, 2,
    )  # fmt: skip
    rows = result["counts"]
    assert [row["replicas"] for row in rows] == [1, 2]
    base = rows[0]["tasks_per_s"]
    for row in rows:
        # wall_s is rounded to 0.1 ms: a run of a few tens of ms is then good to about 0.3%
        assert math.isclose(row["tasks_per_s"], 4 / row["wall_s"], rel_tol=1e-2)
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["wall_s"] * 1000 + 1
        assert row["efficiency"] == round(row["tasks_per_s"] / (row["replicas"] * base), 4)
        assert row["orchestrator_cpu_ms_per_task"] >= 0 and row["worker_cpu_ms_per_task"] >= 0
        # cores_busy counts the replicas' CPU and Redis's and the benchmark's on top
        replicas_cpu_s = (row["orchestrator_cpu_ms_per_task"] + row["worker_cpu_ms_per_task"]) * 4 / 1000
        assert row["cores_busy"] > 0 and row["cores_busy"] * row["wall_s"] >= replicas_cpu_s - 0.02
    assert result["cores"] == os.cpu_count()
    assert rows[0]["efficiency"] == 1.0 and result["efficiency"] == rows[-1]["efficiency"]
    assert "starting 2 orchestrator and 2 echo replicas" in done.stderr


def test_bench_scale_rejects_bad_arguments() -> None:
    for flags, says in ((["--replicas", "4,2"], "--replicas"), (["--replicas", "0"], "--replicas"),
                        (["--steps", "0"], "--steps"), (["--plans", "-1"], "--plans")):  # fmt: skip
        cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "scale", *flags]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 2 and f"podium bench scale: {says}" in done.stderr, (flags, done.stderr)


def test_the_default_workload_is_paced_by_slots_and_waits_not_cores() -> None:
    """One slot per replica and 100 ms waits: eight replicas of each stay well inside two cores, so the
    efficiency measures the orchestrator, not the machine (docs/performance.md, `podium bench scale`)."""
    parser = argparse.ArgumentParser()
    scale.configure(parser)
    defaults = parser.parse_args([])
    assert (defaults.concurrency, defaults.work_ms, defaults.steps, defaults.replicas) == (
        1,
        100,
        2,
        "1,2,4,8",
    )
