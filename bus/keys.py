"""Every Redis key name Podium uses, in one place.

Keys live under a namespace prefix so several deployments (and every test) share one server. Keys that
one command or script touches together share a hash tag (the part in braces), so the same code runs on
Redis Cluster: an agent's inbox, its dead-letter stream and its limits share ``{agent}``; a task's hash and its
event stream share ``{task id}``. Task keys are scoped by agent: replicas of one agent share its tasks, and
no other agent can read, list or cancel them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

DEFAULT_NAMESPACE = "podium"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def validate_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a safe key component, else raise ``ValueError`` naming ``kind``."""
    if not _NAME.match(value):
        raise ValueError(
            f"invalid {kind} {value!r}: use 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return value


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one namespace."""

    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        validate_name("namespace", self.namespace)

    @classmethod
    def from_env(cls) -> Keys:
        return cls(os.environ.get("PODIUM_NAMESPACE") or DEFAULT_NAMESPACE)

    def inbox(self, agent: str) -> str:
        return f"{self.namespace}:inbox:{{{agent}}}"

    def dlq(self, agent: str) -> str:
        return f"{self.namespace}:dlq:{{{agent}}}"

    def limits(self, agent: str) -> str:
        """Hash of the agent's inbox limits (``capacity``, ``retry_after_ms``); shares the inbox's hash tag."""
        return f"{self.namespace}:limits:{{{agent}}}"

    def reply(self, client: str) -> str:
        return f"{self.namespace}:reply:{{{client}}}"

    def proof(self, client: str, envelope_id: str) -> str:
        """A bus client's proof that it sent the mutating request ``envelope_id`` (``bus.proofs``): only the
        Redis user whose reply streams are ``client``'s may write it."""
        return f"{self.namespace}:proof:{{{client}}}:{envelope_id}"

    def task(self, agent: str, task_id: str) -> str:
        """Hash of one of ``agent``'s tasks: the serialized task, its version, owner and state."""
        return f"{self.namespace}:task:{agent}:{{{task_id}}}"

    def task_events(self, agent: str, task_id: str) -> str:
        """Stream of the events of one of ``agent``'s tasks; shares the task hash's hash tag."""
        return f"{self.namespace}:task:{agent}:{{{task_id}}}:events"

    def task_index(self, agent: str) -> str:
        """Sorted set of ``agent``'s task ids by creation, for ListTasks."""
        return f"{self.namespace}:tasks:{{{agent}}}"

    def cancels(self, agent: str) -> str:
        """Stream of cancel notices for ``agent``'s tasks, which every replica watches: the replica running a
        task cancelled through another one stops its executor."""
        return f"{self.namespace}:cancels:{{{agent}}}"

    def card(self, agent: str) -> str:
        """Registry: one agent's card record (a string of JSON), which only that agent's user and the registry may
        write (bus.acl)."""
        return f"{self.namespace}:card:{{{agent}}}"

    def card_index(self) -> str:
        """Registry: the set of names with a card. Agents' users may only add to it (their own name on
        registering); names without a card key are skipped by readers and pruned by the registry."""
        return f"{self.namespace}:cardnames"

    def cards(self) -> str:
        """The shared hash of cards versions before issue 27 kept (any agent could rewrite any field): read only
        to migrate it (``Registry.migrate_legacy``)."""
        return f"{self.namespace}:cards"

    def outside_health(self) -> str:
        """Hash: outside agent -> its last card check by the registry service (ok, checked, error)."""
        return f"{self.namespace}:outside:health"

    def workflows(self) -> str:
        """Hash: workflow name -> the workflow's JSON (``podium workflow add``)."""
        return f"{self.namespace}:workflows"

    def alive(self, agent: str, instance: str) -> str:
        return f"{self.namespace}:alive:{agent}:{instance}"

    def alive_pattern(self, agent: str = "*") -> str:
        return f"{self.namespace}:alive:{agent}:*"

    def instances(self, agent: str) -> str:
        """Registry: sorted set of an agent's instance ids by last heartbeat; ``alive(...)`` keys hold the TTL."""
        return f"{self.namespace}:instances:{agent}"

    def run(self, task_id: str) -> str:
        return f"{self.namespace}:run:{{{task_id}}}"

    def trace(self, task_id: str) -> str:
        return f"{self.namespace}:trace:{{{task_id}}}"

    def runs(self, agent: str) -> str:
        """Orchestrator: sorted set of in-flight runs (task ids) by lease expiry, for resume after a crash."""
        return f"{self.namespace}:runs:{{{agent}}}"

    def breaker(self, agent: str) -> str:
        """Orchestrator: the circuit breaker of calls to ``agent``, shared by every replica."""
        return f"{self.namespace}:breaker:{{{agent}}}"

    def blackboard(self, context_id: str) -> str:
        return f"{self.namespace}:bb:{{{context_id}}}"

    @classmethod
    def of_inbox(cls, stream: str) -> tuple[Keys, str]:
        """The keys and agent name of an inbox key ``{ns}:inbox:{agent}``. Raises ``ValueError``."""
        namespace, sep, rest = stream.partition(":inbox:")
        if not sep or not (rest.startswith("{") and rest.endswith("}")):
            raise ValueError(f"not a Podium inbox key: {stream!r}")
        return cls(namespace), validate_name("agent", rest[1:-1])

    def agent_of_stream(self, stream: str) -> str:
        """The agent name inside an inbox or DLQ key (the text between the braces)."""
        start, end = stream.find("{"), stream.rfind("}")
        if start < 0 or end <= start:
            raise ValueError(f"not a Podium stream key: {stream!r}")
        return stream[start + 1 : end]
