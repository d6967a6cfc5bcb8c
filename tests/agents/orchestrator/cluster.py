"""A whole Podium for the orchestrator's end-to-end tests: real ``podium agent`` processes (specialists,
the orchestrator, test workers) on the test's redis-server, with cards and configs in a temporary
directory, and an a2a client to call the orchestrator over HTTP or the bus."""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import new_data_part, new_text_message
from a2a.types.a2a_pb2 import Role, SendMessageRequest, StreamResponse, Task

from podium.agents.orchestrator.state.trace import TraceEntry, read_trace
from podium.bus.a2a_client import BusClient
from podium.bus.connection import connect
from podium.bus.keys import Keys
from tests.agents.agent_procs import AgentProc, fetch_card
from tests.support import ROOT

WORKER_SKILLS: dict[str, dict[str, Any]] = {
    "contrarian": {
        "id": "calculate",
        "name": "Calculation",
        "tags": ["math", "arithmetic"],
        "description": "Computes arithmetic and percentages.",
    },
    "flaky": {
        "id": "flaky-echo",
        "name": "Flaky echo",
        "tags": ["test"],
        "description": "Echoes after failing twice.",
    },
    "failing": {"id": "fragile", "name": "Fragile", "tags": ["test"], "description": "Always fails."},
    "hanging": {"id": "slow", "name": "Slow", "tags": ["test"], "description": "Never answers."},
    "ping": {"id": "bounce", "name": "Bounce", "tags": ["test"], "description": "Sends the task to pong."},
    "pong": {
        "id": "bounce-back",
        "name": "Bounce back",
        "tags": ["test"],
        "description": "Sends the task to ping.",
    },
    "counter": {"id": "count", "name": "Count", "tags": ["test"], "description": "Echoes and counts runs."},
    "breakable": {"id": "fragile", "name": "Fragile", "tags": ["test"], "description": "Fails while broken."},
}


def worker_card(name: str, skill: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name.split("-")[0] if name.split("-")[0] in WORKER_SKILLS else name,
        "description": f"Test worker {name}.",
        "version": "0.0.1",
        "capabilities": {"streaming": True},
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain", "application/json"],
        "skills": [{**skill, "examples": [], "tags": skill["tags"]}],
    }


class Cluster:
    def __init__(
        self, redis_url: str, namespace: str, home: Path, orchestrator: dict[str, Any] | None = None
    ) -> None:
        self.redis_url, self.namespace, self.home = redis_url, namespace, home
        self.cards, self.configs = home / "cards", home / "config"
        shutil.copytree(ROOT / "cards", self.cards)
        shutil.copytree(ROOT / "agents" / "config", self.configs)
        config = json.loads((self.configs / "orchestrator.json").read_text())
        config["orchestrator"] = {"leaseS": 3, "timeoutS": 30, **(orchestrator or {})}
        (self.configs / "orchestrator.json").write_text(json.dumps(config))
        self.procs: dict[str, AgentProc] = {}
        self.retired: list[AgentProc] = []  # replaced after a kill: their output is kept until close
        self.env = {
            "ANTHROPIC_API_KEY": "",
            "REDIS_URL": "",
            "PODIUM_NAMESPACE": "",
            "PODIUM_CARDS_DIR": str(self.cards),
            "PODIUM_AGENT_CONFIG_DIR": str(self.configs),
        }

    def add_worker(self, name: str, kind: str | None = None, **skill: Any) -> None:
        """A test worker agent ``name`` behaving as ``kind`` (see tests/agents/orchestrator/workers.py);
        ``skill`` overrides fields of its one skill (id, tags ...)."""
        kind = kind or name.split("-")[0]
        card = worker_card(name, {**WORKER_SKILLS[kind], **skill})
        card["name"] = name
        (self.cards / f"{name}.json").write_text(json.dumps(card))
        (self.configs / f"{name}.json").write_text(
            json.dumps({"executor": "tests.agents.orchestrator.workers"})
        )

    def start(
        self,
        *names: str,
        instance: str | None = None,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> list[AgentProc]:
        started = []
        for name in names:
            key = instance or f"{name}-1"
            if (replaced := self.procs.pop(key, None)) is not None:  # e.g. restarted after a kill
                self.retired.append(replaced)
            proc = AgentProc(
                name, self.redis_url, self.namespace, key, *args, env={**self.env, **(env or {})}
            )
            self.procs[key] = proc
            started.append(proc)
        for proc in started:
            proc.wait_ready(timeout=90)
        return started

    @property
    def orchestrator_url(self) -> str:
        return next(p.url for k, p in self.procs.items() if p.name == "orchestrator" and p.proc.alive())

    def close(self) -> None:
        for proc in self.procs.values():
            proc.proc.signal(signal.SIGTERM)
        for proc in [*self.procs.values(), *self.retired]:
            proc.close()

    async def trace(self, task_id: str) -> list[TraceEntry]:
        redis = connect(self.redis_url)
        try:
            return await read_trace(redis, Keys(self.namespace), task_id)
        finally:
            await redis.aclose()

    async def runs(self) -> dict[str, int]:
        """How many times each test worker ran each input: "agent|input" -> runs."""
        redis = connect(self.redis_url)
        try:
            raw = await redis.hgetall(f"{self.namespace}:test:runs")
        finally:
            await redis.aclose()
        return {k.decode(): int(v) for k, v in raw.items()}

    async def effects(self, texts: list[str]) -> dict[str, int]:
        """For each input, how many distinct tasks acted on it (1 when no step ran twice)."""
        redis = connect(self.redis_url)
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for text in texts:
                    pipe.scard(f"{self.namespace}:test:effects:{text}")
                counts = await pipe.execute()
        finally:
            await redis.aclose()
        return dict(zip(texts, (int(c) for c in counts), strict=True))

    async def ask(
        self,
        text: str,
        *,
        data: dict[str, Any] | None = None,
        binding: str = "JSONRPC",
        wait_s: float = 90,
        url: str | None = None,
    ) -> tuple[Task, list[StreamResponse]]:
        """Ask the orchestrator (streaming) and return the final task and every event seen."""
        message = new_text_message(text, role=Role.ROLE_USER)
        if data is not None:
            message.parts.append(new_data_part(data))
        async with self.client(binding, url=url) as client:
            events: list[StreamResponse] = []
            with anyio.fail_after(wait_s):
                async for event in client.send_message(SendMessageRequest(message=message)):
                    events.append(event)
            task_id = next(e.task.id for e in events if e.HasField("task"))
            from a2a.types.a2a_pb2 import GetTaskRequest

            task = await client.get_task(GetTaskRequest(id=task_id))
        return task, events

    @asynccontextmanager
    async def client(
        self, binding: str = "JSONRPC", *, url: str | None = None, streaming: bool = True
    ) -> AsyncIterator[Any]:
        card = await fetch_card(url or self.orchestrator_url)
        async with httpx.AsyncClient(timeout=120) as http:
            redis = connect(self.redis_url)
            bus = BusClient(redis, Keys(self.namespace), sender="test", default_timeout=120)
            try:
                factory = ClientFactory(
                    ClientConfig(
                        streaming=streaming, supported_protocol_bindings=[binding], httpx_client=http
                    )
                )
                bus.register(factory)
                client = factory.create(card)
                yield client
            finally:
                await bus.close()
                await redis.aclose()


def answer_of(task: Task) -> tuple[str, dict[str, Any]]:
    """The orchestrator's answer artifact: its text and its data part."""
    from google.protobuf.json_format import MessageToDict

    for artifact in task.artifacts:
        if artifact.name == "answer":
            text = next(p.text for p in artifact.parts if p.HasField("text"))
            data = next(MessageToDict(p.data) for p in artifact.parts if p.HasField("data"))
            return text, data
    raise AssertionError(f"no answer artifact in task {task.id} ({task.status})")


def status_text(task: Task) -> str:
    return " ".join(p.text for p in task.status.message.parts if p.HasField("text"))
