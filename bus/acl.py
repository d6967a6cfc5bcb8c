"""Least-privilege Redis users for one Podium namespace, as ACL file lines (``podium acl`` writes them).

Each agent gets a user whose keys are its own: its inbox (as the consumer group's member), its dead
letters, its inbox limits, its tasks, its reply streams (a bus client's id starts with its agent's name),
its registry card and heartbeat (one key per card: no agent's user can create, change or delete another
agent's card, liveness or instance records; it may only add a name to the index of cards, which readers
check against the card keys); plus the blackboard, which agents share. Everything an agent
does to other agents' keys goes through two narrow selectors (Redis >= 7): publishing to another
agent's inbox (the admission script: XADD after XLEN/XINFO GROUPS/HMGET of its limits) and answering
into another process's reply stream (XADD, TTL, EXPIRE). A selector allows a command only with all its
keys inside the selector's patterns, and a Lua script's calls are checked the same way, so no selector
lets an agent read another agent's inbox group, claim its work or read its tasks. The orchestrator also
owns the run checkpoints, traces, leases and circuit breakers.

The ``registry`` user serves the registry's HTTP API (cards, heartbeats, queue statistics); ``admin`` is
for the CLI's inspection and repair commands (``podium agents``, ``dlq``, ``trace``, ``up``, ``console``) and may touch
every key of the namespace; ``mcp`` is for MCP servers that keep state (the blackboard). No user may run
FLUSHALL, CONFIG, KEYS, DEBUG, MONITOR, SHUTDOWN, ACL or any other administrative command, and the
``default`` user is switched off (nothing can authenticate as it; its rules exist only for Redis's own replay
of the append-only file, see ``DEFAULT_USER``).

Key patterns come from :class:`bus.keys.Keys` (with ``*`` for the variable part), so a change of the key
space changes the rules with it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from podium.bus.keys import Keys, validate_name

ORCHESTRATOR = "orchestrator"
SERVICE_USERS = ("admin", "registry", "mcp")

# Connecting and scripting, for every user (redis-py loads scripts on first use, sends CLIENT SETINFO).
_BASE = (
    "+ping +echo +hello +auth +select +client|setname +client|getname +client|id +time "
    "+multi +exec +discard +watch +unwatch"
)
_SCRIPTS = "+evalsha +eval +script|load +script|exists"
_STREAMS = (
    "+xadd +xread +xrange +xrevrange +xlen +xtrim +xdel +xack +xclaim +xautoclaim +xpending +xreadgroup "
    "+xgroup|create +xgroup|createconsumer +xgroup|delconsumer +xgroup|setid +xinfo|groups +xinfo|stream"
)
_DATA = (
    "+get +set +del +unlink +exists +expire +pexpire +ttl +pttl +type "
    "+hget +hgetall +hmget +hset +hdel +hexists +hincrby +hlen +hkeys +hstrlen "
    "+zadd +zrange +zrevrange +zrangebyscore +zrem +zremrangebyscore +zcard +zscore +smembers +sismember +sadd +srem"
)
# INFO: agents read maxmemory-policy from it when CONFIG GET is refused (bus.eviction).
_AGENT_COMMANDS = f"{_BASE} {_SCRIPTS} {_STREAMS} {_DATA} +info"
# Publishing into another agent's inbox: the admission script (bus.backpressure) and what it calls.
_PUBLISH_COMMANDS = f"{_SCRIPTS} +xadd +xlen +xinfo|groups +hmget"
# Adding its own name to the index of cards (bus.keys.Keys.card_index): SADD only, so no SREM or DEL of others.
_INDEX_COMMANDS = "+sadd"
# Answering into another process's reply stream (bus.streams): XADD, and an expiry on first use; with the
# agent's own inbox in the same rule, so the final reply's script may also XACK the request it answers
# (one script's keys must all match one rule).
_REPLY_COMMANDS = f"{_SCRIPTS} +xadd +ttl +expire +xack"


@dataclass(frozen=True)
class User:
    name: str
    password: str
    rules: str  # what follows the password in the ACL line

    def line(self) -> str:
        """The ACL file line; the password only as its SHA-256 (``#<hex>``)."""
        digest = hashlib.sha256(self.password.encode()).hexdigest()
        return f"user {self.name} on #{digest} resetkeys resetchannels -@all {self.rules}"


def password_variable(user: str) -> str:
    """The environment variable holding ``user``'s password: ``PODIUM_REDIS_PASSWORD_<USER>``."""
    return "PODIUM_REDIS_PASSWORD_" + re.sub(r"[^A-Za-z0-9]", "_", user).upper()


def _keys(patterns: Sequence[str], prefix: str = "~") -> str:
    return " ".join(f"{prefix}{p}" for p in dict.fromkeys(patterns))


def task_patterns(keys: Keys, agent: str) -> list[str]:
    """The task keys ``agent`` may use: its own tasks, their events, its task index and cancel stream."""
    return [keys.task(agent, "*"), keys.task_events(agent, "*"), keys.task_index(agent), keys.cancels(agent)]


def agent_rules(keys: Keys, agent: str) -> str:
    """The ACL rules (after the password) of ``agent``'s user."""
    own = [
        keys.inbox(agent),
        keys.dlq(agent),
        keys.limits(agent),
        *task_patterns(keys, agent),
        keys.reply(f"{agent}.*"),  # its bus client's reply streams (bus.a2a_client)
        keys.proof(
            f"{agent}.*", "*"
        ),  # its bus client's proofs of the mutating requests it sends (bus.proofs)
        keys.alive(agent, "*"),
        keys.instances(agent),
        keys.card(agent),
        keys.blackboard("*"),
    ]
    if agent == ORCHESTRATOR:
        own += [
            keys.run("*"),
            keys.trace("*"),
            keys.runs(agent),
            keys.runs(agent) + ":owners",
            keys.breaker("*"),
        ]
    # Discovery reads every agent's heartbeats.
    readable = [
        keys.alive_pattern(),
        keys.instances("*"),
        keys.card("*"),
        keys.card_index(),
        keys.proof("*", "*"),
    ]
    if agent == ORCHESTRATOR:
        readable.append(
            keys.workflows()
        )  # read only: the workflows it offers (podium workflow add writes them)
    publish = [keys.inbox("*"), keys.limits("*")]
    replies = [keys.reply("*"), keys.inbox(agent)]
    return (
        f"{_keys(own)} {_keys(readable, '%R~')} {_AGENT_COMMANDS} "
        f"({_keys(publish)} {_PUBLISH_COMMANDS}) ({_keys(replies)} {_REPLY_COMMANDS}) "
        f"({_keys([keys.card_index()])} {_INDEX_COMMANDS})"
    )


def registry_rules(keys: Keys) -> str:
    """The registry HTTP service: cards and heartbeats, and each inbox's statistics (read through a script
    that only reads, but scripts need read-write key access)."""
    patterns = [
        keys.card("*"),
        keys.card_index(),
        keys.cards(),  # the shared hash of older versions, which the registry migrates (Registry.migrate_legacy)
        keys.alive_pattern(),
        keys.instances("*"),
        keys.inbox("*"),
        keys.limits("*"),
        keys.dlq("*"),
        keys.outside_health(),
    ]
    commands = (
        f"{_BASE} {_SCRIPTS} +info +hget +hgetall +hmget +hset +hdel +hexists +get +set +del +exists +zadd "
    )
    commands += "+smembers +sadd +srem "
    commands += "+zrange +zrem +xlen +xinfo|groups +xpending +xrange"
    return f"{_keys(patterns)} {commands}"


def admin_rules(keys: Keys) -> str:
    """The CLI's inspection and repair commands: every key of the namespace, no administrative command."""
    return f"~{keys.namespace}:* {_AGENT_COMMANDS} +scan"


def mcp_rules(keys: Keys) -> str:
    """MCP servers over HTTP that keep state in Redis: the blackboard."""
    return f"{_keys([keys.blackboard('*')])} {_BASE} {_SCRIPTS} {_DATA} +info"


def users(keys: Keys, agents: Sequence[str], passwords: Mapping[str, str]) -> list[User]:
    """One user per agent plus ``admin``, ``registry`` and ``mcp``, with ``passwords[user]``.

    Raises ``ValueError`` for a bad agent name and ``KeyError`` naming a user without a password."""
    for agent in agents:
        validate_name("agent name", agent)
        if agent in SERVICE_USERS or agent == "default":
            raise ValueError(f"an agent may not be named {agent!r}: that is a service user's name")
    rules = {
        "admin": admin_rules(keys),
        "registry": registry_rules(keys),
        "mcp": mcp_rules(keys),
        **{agent: agent_rules(keys, agent) for agent in agents},
    }
    return [User(name, passwords[name], rule) for name, rule in rules.items()]


# The ``default`` user is off: no connection can act as it (an unauthenticated one gets NOAUTH; AUTH as
# ``default`` is refused), so its rules grant nobody anything. They must allow every command all the same:
# Redis replays its append-only file as ``default``, and before the fix of redis/redis#14541 (in 7.x,
# Debian's 7.0.15, the redis:7 images) re-checks each MULTI/EXEC block of it (every Lua script's writes are
# logged as one) against that user's rules. With ``-@all`` every scripted write -- tasks, checkpoints,
# leases -- was silently dropped on restart while plain writes came back (tests/bus/test_acl_restart.py).
DEFAULT_USER = "user default off resetpass ~* &* +@all"


def acl_file(found: Sequence[User]) -> str:
    """The ACL file: the ``default`` user off (see ``DEFAULT_USER``), then ``found``."""
    lines = [DEFAULT_USER, *(u.line() for u in found)]
    return "\n".join(lines) + "\n"
