"""An agent scaled to zero still takes work: ``podium prepare`` creates its inbox group before any replica
runs (so an autoscaler measures the lag from the first request) and registers its card as standby (so it
stays discoverable); a request to it waits in its inbox and is answered when a replica starts; and the
orchestrator's delegation allows the replica time to start (``coldStartS``). Real redis-server, real
``podium`` processes, the orchestrator's own Dispatcher and Delegator over the bus."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

import anyio
import pytest
from a2a.types.a2a_pb2 import TaskState

from podium.agents.orchestrator.budget import Spending
from podium.agents.orchestrator.catalog import Catalog
from podium.agents.orchestrator.delegate import Delegator
from podium.agents.orchestrator.dispatch import CallSpec, Dispatcher, Policy
from podium.agents.orchestrator.errors import DelegationError
from podium.agents.orchestrator.state.breakers import Breakers
from podium.agents.orchestrator.state.trace import Trace, read_trace
from podium.bus.a2a_client import BusClient
from podium.bus.keys import Keys
from podium.registry.cards import card_names, load_card
from podium.registry.store import Registry
from tests.agents.agent_procs import AgentProc

pytestmark = pytest.mark.anyio


def _prepare(redis_url: str, namespace: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", "prepare", "--redis-url", redis_url,
         "--namespace", namespace, *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def _groups(redis: Any, stream: str) -> dict[str, dict[str, Any]]:
    groups = await redis.xinfo_groups(stream)
    return {(g["name"].decode() if isinstance(g["name"], bytes) else g["name"]): g for g in groups}


async def test_prepare_creates_every_group_and_standby_card_before_any_replica(
    redis: Any, redis_url: str, namespace: str, keys: Keys
) -> None:
    done = _prepare(redis_url, namespace, "--standby")
    assert done.returncode == 0, done.stderr
    registry = Registry(redis, keys)
    entries = {e.name: e for e in await registry.list()}
    assert set(entries) == set(card_names())  # discoverable, though nothing runs
    for name, entry in entries.items():
        assert entry.standby and entry.alive == 0 and not entry.static
        assert [i.protocol_binding for i in entry.card.supported_interfaces] == ["redis-streams"]
        group = (await _groups(redis, keys.inbox(name)))[name]
        # the lag KEDA's lagCount reads (XINFO GROUPS, Redis 7): valid, and zero before any request
        assert group["lag"] == 0 and group["consumers"] == 0 and group["pending"] == 0
    # Idempotent: a second deploy changes nothing and fails nothing.
    await redis.xadd(keys.inbox("echo"), {"e": "{}"})
    again = _prepare(redis_url, namespace, "--standby")
    assert again.returncode == 0, again.stderr
    assert (await _groups(redis, keys.inbox("echo")))["echo"]["lag"] == 1


async def test_without_standby_the_cards_are_not_registered(
    redis: Any, redis_url: str, namespace: str
) -> None:
    done = _prepare(redis_url, namespace, "--agents", "echo")
    assert done.returncode == 0, done.stderr
    assert await Registry(redis, Keys(namespace)).list(include_down=True) == []
    assert "echo" in (await _groups(redis, Keys(namespace).inbox("echo")))


async def test_a_replica_keeps_the_standby_flag_and_leaving_keeps_the_card_discoverable(
    redis: Any, keys: Keys
) -> None:
    registry = Registry(redis, keys)
    await registry.register_standby(load_card("echo"))
    async with registry.announce(load_card("echo"), "echo-1", ttl=5, interval=1):
        entry = await registry.entry("echo")
        assert entry is not None and entry.standby and entry.alive == 1
    entry = await registry.entry("echo")
    assert entry is not None and entry.standby and entry.alive == 0 and entry.discoverable
    assert await registry.remove("echo")
    await registry.register(load_card("echo"), "echo-2", ttl=5)
    await registry.deregister("echo", "echo-2")
    assert await registry.entry("echo") is None  # an ordinary agent with no replica drops out


async def _dispatcher(
    redis: Any, keys: Keys, bus: BusClient, delegator: Delegator, cold_start_s: float
) -> Dispatcher:
    catalog = await Catalog.load(Registry(redis, keys), "orchestrator")
    task_id = f"t-{uuid.uuid4().hex[:8]}"
    return Dispatcher(
        catalog=catalog,
        delegator=delegator,
        breakers=Breakers(redis, keys),
        trace=Trace(redis, keys, task_id),
        spending=Spending(),
        task_id=task_id,
        context_id=f"c-{uuid.uuid4().hex[:8]}",
        policy=Policy(timeout_s=0.5, retries=0, cold_start_s=cold_start_s),
    )


@pytest.mark.timeout(180)
async def test_a_delegation_to_an_agent_at_zero_waits_for_its_cold_start(
    redis: Any, redis_url: str, namespace: str, keys: Keys
) -> None:
    assert _prepare(redis_url, namespace, "--standby", "--agents", "echo").returncode == 0
    inbox = keys.inbox("echo")
    async with BusClient(redis, keys, sender="orchestrator") as bus:
        delegator = Delegator(bus)
        try:
            # Without a cold-start allowance the call times out while the request waits for a replica.
            quick = await _dispatcher(redis, keys, bus, delegator, cold_start_s=0)
            with pytest.raises(DelegationError, match=r"did not answer within|timed out"):
                await quick.call(CallSpec(step="s1", key="k1", skill="echo", text="too soon", retries=0))

            patient = await _dispatcher(redis, keys, bus, delegator, cold_start_s=120)
            replica: AgentProc | None = None
            reply: Any = None

            async def call() -> None:
                nonlocal reply
                reply = await patient.call(
                    CallSpec(step="s2", key="k2", skill="echo", text="wake up", retries=0)
                )

            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call)
                    # The request waits in the inbox, undelivered, longer than the plain timeout ...
                    while (await _groups(redis, inbox))["echo"]["lag"] < 2:  # noqa: ASYNC110 - polling Redis
                        await anyio.sleep(0.05)
                    await anyio.sleep(patient.policy.timeout_s * 2)
                    # ... and the replica that starts now takes it.
                    replica = AgentProc("echo", redis_url, namespace, "echo-cold")
                    await anyio.to_thread.run_sync(replica.wait_ready, 90)
            finally:
                if replica is not None:
                    replica.close()
        finally:
            await delegator.aclose()
    assert reply is not None and reply.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert reply.data["echo"] == "wake up" and reply.data["servedBy"] == "echo-cold"
    await patient.trace.drain()
    handoff = next(e for e in await read_trace(redis, keys, patient.task_id) if e.event == "handoff")
    assert "no replica running: allowing 120s" in handoff.reason
    assert handoff.data["timeoutS"] == pytest.approx(120.5)


def _prepare_echo(redis_url: str, namespace: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", "prepare", "--redis-url", redis_url,
         "--namespace", namespace, "--agents", "echo", "--standby"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


async def test_standby_cards_declare_the_schemes_the_agents_will_require(
    redis: Any, redis_url: str, namespace: str, keys: Keys, tmp_path: Any
) -> None:
    """A standby card says what its agent will require: the clients file and OIDC count, not only
    PODIUM_A2A_TOKEN (the settings are read as the agent reads them)."""
    env = {**os.environ, "PODIUM_A2A_TOKEN": "", "PODIUM_CLIENTS_FILE": str(tmp_path / "clients.json"),
           "PODIUM_OIDC_ISSUER": "https://issuer.example", "PODIUM_OIDC_AUDIENCE": "podium"}  # fmt: skip
    done = _prepare_echo(redis_url, namespace, env)
    assert done.returncode == 0, done.stderr
    card = await Registry(redis, keys).get("echo", include_down=True)
    assert card is not None
    required = {name for req in card.security_requirements for name in req.schemes}
    assert required == {"bearer", "oidc"}, card.security_requirements
    bad = _prepare_echo(redis_url, namespace, {**env, "PODIUM_OIDC_AUDIENCE": ""})
    assert bad.returncode == 2 and "PODIUM_OIDC_AUDIENCE" in bad.stderr, bad.stderr
