"""Shared helpers for the registry tests: cards with run-time interfaces, polling with a deadline."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from a2a.types import AgentCard, AgentInterface

from podium.registry.cards import card_from_json, load_card

AGENTS = ["analyst", "echo", "orchestrator", "researcher", "reviewer", "writer"]


def podium_card(name: str, port: int = 8702, namespace: str = "podium") -> AgentCard:
    return load_card(
        name,
        interfaces=[
            AgentInterface(protocol_binding="JSONRPC", url=f"http://127.0.0.1:{port}/"),
            AgentInterface(protocol_binding="redis-streams", url=f"redis-streams://{namespace}/{name}"),
        ],
        signer=None,
    )


def custom_card(
    name: str, skills: list[dict[str, Any]], url: str = "https://agents.example.com/"
) -> AgentCard:
    return card_from_json(
        {
            "name": name,
            "description": f"{name} test agent",
            "version": "1.0.0",
            "capabilities": {},
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["text/plain"],
            "supportedInterfaces": [{"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
            "skills": skills,
        },
        key_name=False,
    )


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 10, what: str = "condition"
) -> None:
    """Poll an async predicate until it holds; raise ``TimeoutError`` naming ``what`` after ``within`` seconds."""
    try:
        with anyio.fail_after(within):
            while True:
                if await check():
                    return
                await anyio.sleep(0.05)
    except TimeoutError:
        raise TimeoutError(f"timed out after {within}s waiting for {what}") from None


async def snapshot(redis: Any, namespace: str) -> dict[str, Any]:
    """Every key under ``namespace`` with its value, to show that a refused write changed nothing."""
    out: dict[str, Any] = {}
    async for key in redis.scan_iter(match=f"{namespace}:*"):
        kind = (await redis.type(key)).decode()
        if kind == "hash":
            out[key] = {k: json.loads(v)["card"] for k, v in (await redis.hgetall(key)).items()}
        elif kind == "zset":
            out[key] = await redis.zrange(key, 0, -1)
        else:
            out[key] = kind
    return out
