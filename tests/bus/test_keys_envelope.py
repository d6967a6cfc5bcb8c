from __future__ import annotations

import pytest

from podium.bus import Budget, BudgetExhausted, Envelope, EnvelopeError, Keys
from podium.bus.connection import connect, redact
from podium.bus.errors import ConfigError


def test_keys_are_namespaced_and_share_hash_tags() -> None:
    k = Keys("ns1")
    assert k.inbox("echo") == "ns1:inbox:{echo}"
    assert k.dlq("echo").endswith("{echo}")
    assert k.task("a", "t1").split("{")[1] == k.task_events("a", "t1").split("{")[1].replace(":events", "")
    assert k.agent_of_stream(k.inbox("echo")) == "echo"


def test_bad_namespace_is_rejected_with_its_name() -> None:
    with pytest.raises(ValueError, match="namespace"):
        Keys("bad name")


def test_envelope_round_trip_and_errors() -> None:
    env = Envelope(method="SendMessage", payload={"message": {"messageId": "m"}}, budget=Budget(hops=2))
    back = Envelope.decode(env.encode())
    assert back == env
    with pytest.raises(EnvelopeError, match="attempt"):
        Envelope.decode('{"v": 1, "attempt": -1}')
    with pytest.raises(EnvelopeError):
        Envelope.decode(b"not json")
    with pytest.raises(EnvelopeError, match="schema version"):
        Envelope.decode('{"v": 99}')


def test_budget_hops_decrement_and_exhaust() -> None:
    b = Budget(hops=1)
    assert b.next_hop().hops == 0
    with pytest.raises(BudgetExhausted):
        b.next_hop().next_hop()
    assert Budget().next_hop().hops is None


def test_connect_rejects_bad_urls_naming_redis_url() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        connect("http://localhost:6379")
    with pytest.raises(ConfigError, match="no host"):
        connect("redis://")
    assert redact("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"


@pytest.mark.anyio
async def test_real_redis_fixture_is_reachable(redis) -> None:
    assert await redis.ping()
