"""`podium bench soak` as a user runs it, shortened: a minute of questions from two callers against `podium up` on
an append-only Redis with the ACLs on, one agent SIGKILLed and Redis restarted once. Nothing may be lost or
answered twice, and the JSON must add up. (The figures of a 10-minute run are in docs/performance.md.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.proctree import needs_proc
from tests.support import REDIS_SERVER, ROOT

SOAK = [sys.executable, "-m", "podium.agents.cli", "bench", "soak"]


@pytest.mark.slow
@pytest.mark.timeout(1200)
@needs_proc
@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed")
def test_a_short_soak_loses_nothing_and_answers_nothing_twice() -> None:
    cmd = [*SOAK, "--minutes", "1", "--rate", "1", "--kill-every", "40", "--clients", "2", "--task-ttl", "10",
           "--drain", "240", "--seed", "7", "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1100, cwd=ROOT)
    assert done.stdout.strip(), done.stderr[-3000:]
    r = json.loads(done.stdout)
    assert done.returncode == 0, (r, done.stderr[-3000:])
    assert r["lost"] == 0 and r["duplicated"] == 0, r
    assert r["sent"] == 60 and r["sent"] == r["answered"] + r["failed"] + r["lost"]
    assert r["answered"] > 0 and sum(r["byTarget"].values()) == r["answered"]
    assert sum(r["failedReasons"].values()) == r["failed"]
    assert len(r["kills"]) == 1 and r["kills"][0]["pid"] and r["restartsSeen"] >= 1, r["kills"]
    assert r["redisRestart"]["atS"] > 0 and "restarted Redis" in done.stderr
    assert r["latencyMs"]["p50"] <= r["latencyMs"]["p99"]
    agents = {"orchestrator", "researcher", "analyst", "writer", "reviewer", "echo"}
    assert set(r["rssGrowth"]) == agents and set(r["rssMb"]) == agents
    for agent, grow in r["rssGrowth"].items():
        assert grow == round(r["rssMb"][agent]["last"] - r["rssMb"][agent]["first"], 1)
    keys = r["redisKeys"]
    assert r["redisKeyGrowth"] == round(keys["last"] - keys["first"], 1)
    assert r["redisMemoryGrowth"] == round(r["redisMemory"]["last"] - r["redisMemory"]["first"], 1)
    assert {"card", "inbox", "task"} <= set(keys["byKind"])
    assert [(c["notMine"], c["othersSeen"]) for c in r["isolation"]] == [(0, 0), (0, 0)], r["isolation"]
    assert sum(c["tasks"] for c in r["isolation"]) == r["sent"] - sum(
        n for why, n in r["failedReasons"].items() if why.startswith("send:")
    )


def test_bench_soak_rejects_bad_arguments() -> None:
    for args, says in (
        (["--minutes", "0"], "--minutes must be more than 0"),
        (["--agents", "analyst"], "--agents must include orchestrator or echo"),
        (["--task-ttl", "0"], "--task-ttl must be at least 1 second"),
    ):
        done = subprocess.run([*SOAK, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr, done.stderr
