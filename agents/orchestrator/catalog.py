"""What the orchestrator can delegate to: a snapshot of the registry's agents and their skills.

Taken once per task (one read of the registry), so a plan is built and checked against one view.
Candidates for a skill come alive-first: agents with more alive instances before those with fewer,
and outside (static) agents, which Podium cannot see beating, after agents that beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from a2a.types import AgentSkill

from podium.registry.entries import AgentEntry, Match
from podium.registry.store import Registry


@dataclass
class Catalog:
    registry: Registry
    own_name: str
    entries: list[AgentEntry] = field(default_factory=list)

    @classmethod
    async def load(cls, registry: Registry, own_name: str) -> Catalog:
        """The registry's discoverable agents, except the orchestrator itself. Raises ``redis.RedisError``."""
        entries = [e for e in await registry.list() if e.name != own_name]
        return cls(registry, own_name, entries)

    def skills(self) -> set[str]:
        return {s.id for e in self.entries for s in e.card.skills}

    def agents(self) -> set[str]:
        return {e.name for e in self.entries}

    def entry(self, name: str) -> AgentEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def candidates(self, skill: str, agent: str | None = None) -> list[AgentEntry]:
        """Agents offering ``skill`` (only ``agent`` when pinned), best first."""
        found = [
            e
            for e in self.entries
            if (agent is None or e.name == agent) and any(s.id == skill for s in e.card.skills)
        ]
        return sorted(found, key=lambda e: (e.static, -e.alive, e.name))

    def skill(self, skill_id: str) -> AgentSkill | None:
        for e in self.candidates(skill_id):
            for s in e.card.skills:
                if s.id == skill_id:
                    return s
        return None

    def tagged(self, tags: set[str]) -> list[str]:
        """Skill ids carrying any of ``tags``, in candidate order."""
        out: list[str] = []
        for e in sorted(self.entries, key=lambda e: (e.static, -e.alive, e.name)):
            for s in e.card.skills:
                if s.id not in out and tags & {t.lower() for t in s.tags}:
                    out.append(s.id)
        return out

    async def rank(self, text: str, limit: int = 10) -> list[Match]:
        """The registry's own text search (BM25 over skill names, descriptions, tags, examples)."""
        matches = await self.registry.find(text=text, limit=limit + 1)
        return [m for m in matches if m.entry.name != self.own_name][:limit]

    def describe(self) -> list[dict[str, Any]]:
        """The skills as a model planner sees them: alive agents first."""
        out = []
        for e in sorted(self.entries, key=lambda e: (e.static, -e.alive, e.name)):
            for s in e.card.skills:
                out.append(
                    {
                        "skill": s.id,
                        "agent": e.name,
                        "alive": e.alive if not e.static else "outside agent",
                        "description": s.description,
                        "tags": list(s.tags),
                        "examples": list(s.examples)[:3],
                        "inputModes": list(s.input_modes or e.card.default_input_modes),
                    }
                )
        return out
