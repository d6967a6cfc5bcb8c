"""Start real ``podium agent`` processes for end-to-end tests and make a2a clients for them."""

from __future__ import annotations

import re
from collections.abc import Mapping

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.client.client import Client
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import AgentCard, Message, Role, SendMessageRequest
from google.protobuf.json_format import ParseDict

from podium.bus.a2a_client import BusClient
from tests.support import Proc, wait_until

READY = re.compile(r"podium agent (\S+) ready: A2A (\S+)")


class AgentProc:
    """One ``podium agent NAME`` process; ``url`` is its A2A HTTP base once ready."""

    def __init__(self, name: str, redis_url: str, namespace: str, instance: str, *extra: str,
                 env: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self.name = name
        self.instance = instance
        args = [
            "agent",
            name,
            "--redis-url",
            redis_url,
            "--namespace",
            namespace,
            "--instance",
            instance,
            *extra,
        ]
        self.proc = Proc.podium(*args, env={"PODIUM_LOG_LEVEL": "INFO", **(env or {})})
        self.url = ""

    def wait_ready(self, timeout: float = 30) -> AgentProc:
        def ready() -> bool:
            if not self.proc.alive():
                raise RuntimeError(f"agent {self.instance} exited:\n{self.proc.output()}")
            match = READY.search(self.proc.output())
            if match:
                self.url = match.group(2)
            return bool(match)

        wait_until(ready, timeout=timeout, what=f"agent {self.instance} to be ready")
        return self

    def close(self) -> None:
        self.proc.close()


async def fetch_card(url: str, headers: Mapping[str, str] | None = None) -> AgentCard:
    async with httpx.AsyncClient(headers=dict(headers or {})) as http:
        response = await http.get(f"{url}/.well-known/agent-card.json")
        response.raise_for_status()
        return ParseDict(response.json(), AgentCard(), ignore_unknown_fields=True)


def make_client(card: AgentCard, binding: str, *, bus: BusClient | None = None, streaming: bool = True,
                http: httpx.AsyncClient | None = None) -> Client:  # fmt: skip
    """An ordinary a2a Client that talks to ``card`` over ``binding`` only."""
    factory = ClientFactory(
        ClientConfig(streaming=streaming, supported_protocol_bindings=[binding], httpx_client=http)
    )
    if bus is not None:
        bus.register(factory)
    return factory.create(card)


def text_request(text: str, **metadata: object) -> SendMessageRequest:
    message: Message = new_text_message(text, role=Role.ROLE_USER)
    if metadata:
        message.metadata.update(metadata)
    return SendMessageRequest(message=message)
