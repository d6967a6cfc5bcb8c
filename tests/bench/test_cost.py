"""`podium bench cost` as a user runs it: a real orchestrator and worker, both curves, one JSON object whose
marginal costs and growth follow from its own figures (never a speed or a size)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest

from tests.support import ROOT


@pytest.mark.timeout(240)
def test_bench_cost_json_reports_both_curves(redis_url: str) -> None:
    cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "cost", "--redis-url", redis_url,
           "--sizes", "1,2,4", "--cards", "1,3,5", "--card-plan-steps", "2", "--plans", "2", "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=230, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["benchmark"], result["plans"], result["card_plan_steps"]) == ("cost", 2, 2)
    assert [p["n"] for p in result["sizes"]] == [1, 2, 4] == [p["steps"] for p in result["sizes"]]
    assert [p["n"] for p in result["cards"]] == [1, 3, 5] and {p["steps"] for p in result["cards"]} == {2}
    for curve in ("sizes", "cards"):
        points = result[curve]
        for key in ("orchestrator_cpu_ms", "worker_cpu_ms", "redis_kb"):
            assert points[0][f"{key}_per"] == round(points[0][key] / points[0]["n"], 4)
            for before, p in itertools.pairwise(points):
                assert p[f"{key}_per"] == round((p[key] - before[key]) / (p["n"] - before["n"]), 4)
            first, last = points[1][f"{key}_per"], points[-1][f"{key}_per"]
            growth = result[f"{curve}_growth"][key]
            assert growth == (round(last / first, 3) if first > 0 else None)
        # Tasks leave their state in Redis; used_memory is read around each point, so one small point may
        # show nothing (the allocator, expiring keys), but the curve as a whole does.
        assert all(p["redis_kb"] >= 0 for p in points) and max(p["redis_kb"] for p in points) > 0
    assert "5 other agents registered" in done.stderr


def test_bench_cost_rejects_bad_arguments() -> None:
    for flag in (["--sizes", "8,1"], ["--sizes", "200"], ["--cards", "0"], ["--plans", "0"]):
        cmd = [sys.executable, "-m", "podium.agents.cli", "bench", "cost", *flag]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 2 and "podium bench cost: --" in done.stderr, (flag, done.stderr)
