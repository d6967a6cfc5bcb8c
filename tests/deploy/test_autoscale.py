"""Autoscaling on the bus, shown without a cluster: ``podium bench autoscale`` plays KEDA's part with the
echo agent's ScaledObject from deploy/kubernetes (its triggers, targets and activation; polling and
cooldown shortened), reading the same lag and pending metrics from a real redis-server, starting real
``podium agent echo`` replicas and SIGTERMing them as Kubernetes would, while bursts of requests arrive over
the bus. Every burst meets the agent at zero replicas. No request may be lost or run twice."""

from __future__ import annotations

import pytest
import yaml

from podium.bench.autoscale import Policy, Trigger, measure
from tests.deploy.manifests import DEPLOY

pytestmark = pytest.mark.anyio


def _echo_scaled_object() -> dict:
    docs = yaml.safe_load_all((DEPLOY / "base" / "keda.yaml").read_text())
    return next(d for d in docs if d and d["kind"] == "ScaledObject" and d["metadata"]["name"] == "echo")


def test_the_local_scaler_decides_as_keda_and_the_hpa_do() -> None:
    policy = Policy.from_scaled_object(_echo_scaled_object())
    assert policy.triggers == (Trigger("lag", 5, 0), Trigger("pending", 16, 0))
    assert (policy.min_replicas, policy.max_replicas) == (0, 10)
    idle = {"lag": 0, "pending": 0}
    assert policy.decide(0, idle, idle_for=1e9) == 0  # nothing waiting: stays at zero
    assert policy.decide(0, {"lag": 1, "pending": 0}, 0) == 1  # one waiting request wakes it (activation 0)
    assert policy.decide(1, {"lag": 23, "pending": 0}, 0) == 5  # ceil(23 / lagCount 5)
    assert policy.decide(2, {"lag": 0, "pending": 40}, 0) == 3  # ceil(40 / 16): work in flight keeps replicas
    assert policy.decide(3, {"lag": 999, "pending": 0}, 0) == 10  # maxReplicaCount
    assert policy.decide(2, idle, idle_for=policy.cooldown_s - 1) == 2  # cooling down
    assert policy.decide(2, idle, idle_for=policy.cooldown_s) == 0
    with pytest.raises(ValueError, match="redis-streams"):
        Policy.from_scaled_object({"spec": {"triggers": [{"type": "cpu", "metadata": {}}]}})


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_scaling_from_and_to_zero_while_bursts_arrive_loses_nothing_and_runs_nothing_twice(
    redis_url: str,
) -> None:
    policy = Policy.from_scaled_object(_echo_scaled_object(), polling_s=0.5, cooldown_s=3.0, max_replicas=4)
    report = await measure(redis_url, policy, bursts=2, burst_size=20, work_s=0.5)
    assert (report.sent, report.answered, report.lost, report.run_twice) == (40, 40, 0, 0), report
    assert report.from_zero == 2 and report.to_zero == 2, report.scale_events
    # Replicas were stopped while others still had work pending, and more than one replica served.
    assert any(0 < e["to"] < e["from"] and e["pending"] > 0 for e in report.scale_events), report.scale_events
    assert len(report.served_by) > 1, report.served_by
