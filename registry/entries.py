"""What the registry returns: an agent's entry (card, metadata, alive instances, inbox backlog), an
instance, a match."""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from a2a.types import AgentCard

from podium.bus.backpressure import QueueStats
from podium.registry.cards import card_to_dict


@dataclass(frozen=True)
class Instance:
    """One running replica of an agent, as its last heartbeat described it."""

    instance: str
    started: float
    beat: float
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.info, "instance": self.instance, "started": self.started, "lastHeartbeat": self.beat}


@dataclass(frozen=True)
class AgentEntry:
    """A registered agent: its card, registry metadata and alive instances."""

    name: str
    card: AgentCard
    registered: float
    signed: bool
    verified_by: str | None = None
    static: bool = False
    standby: bool = False  # autoscaled: discoverable with no replica (``Registry.register_standby``)
    url: str | None = None
    instances: tuple[Instance, ...] = ()
    queue: QueueStats | None = None  # filled by ``Registry.with_queues``; None for outside agents
    token_env: str | None = None  # outside agents: the env var holding their own bearer token
    health: dict[str, Any] | None = None  # outside agents: the last card check, by ``with_queues``

    @property
    def alive(self) -> int:
        return len(self.instances)

    @property
    def last_heartbeat(self) -> float | None:
        return max((i.beat for i in self.instances), default=None)

    @property
    def discoverable(self) -> bool:
        return self.static or self.standby or self.alive > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON for ``GET /agents`` and ``podium agents --json``."""
        return {
            "name": self.name,
            "skills": [s.id for s in self.card.skills],
            "alive": self.alive,
            "lastHeartbeat": self.last_heartbeat,
            "signed": self.signed,
            "verifiedBy": self.verified_by,
            "static": self.static,
            "standby": self.standby,
            "url": self.url,
            "registered": self.registered,
            "instances": [i.to_dict() for i in self.instances],
            "queue": self.queue.to_dict() if self.queue else None,
            "tokenEnv": self.token_env,
            "health": self.health,
            "card": card_to_dict(self.card),
        }


@dataclass(frozen=True)
class Match:
    """A discovery result: the agent, the skill that matched best and its score (1.0 for exact filters)."""

    entry: AgentEntry
    skill: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.entry.to_dict(), "match": {"skill": self.skill, "score": round(self.score, 4)}}


def new_instance_id() -> str:
    """A readable, unique instance id: host, pid and a random suffix."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def instance_from_json(instance: str, value: Any) -> Instance:
    try:
        data = json.loads(value)
    except ValueError:
        data = {}
    info = {k: v for k, v in data.items() if k not in ("instance", "started", "beat")}
    beat = float(data.get("beat") or 0)
    return Instance(instance=instance, started=float(data.get("started") or beat), beat=beat, info=info)
