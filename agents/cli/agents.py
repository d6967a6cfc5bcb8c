"""``podium agents``: the registered agents, their skills, health and inbox backlog, read straight from
Redis."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import anyio
from redis.exceptions import RedisError

from podium.agents.orchestrator.state.breakers import breaker_states
from podium.bus.connection import connect, redact
from podium.bus.errors import ConfigError
from podium.bus.keys import Keys
from podium.registry.entries import AgentEntry
from podium.registry.errors import RegistryError
from podium.registry.store import Registry

NO_REDIS = (
    "podium agents: REDIS_URL is not set, so there is nothing to list: without it `podium up` runs the "
    "agents on an embedded bus that only its own process sees. Point both at one Redis "
    "(export REDIS_URL=redis://127.0.0.1:6379/0), start `podium up`, then run `podium agents`\n"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", nargs="?", choices=["add", "remove"], help="add URL / remove NAME: an outside A2A agent"
    )
    parser.add_argument("target", nargs="?", help="the outside agent's URL (add) or name (remove)")
    parser.add_argument(
        "--token-env",
        default=None,
        metavar="VAR",
        help="add: the env var holding the agent's own bearer token",
    )
    parser.add_argument("--name", default=None, help="add: register under this name (default: the card's)")
    parser.add_argument(
        "--registry",
        default=None,
        help="the registry's URL (default $PODIUM_REGISTRY_URL or http://127.0.0.1:8701)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--all", action="store_true", help="include agents with no alive instance")
    parser.add_argument("--redis-url", default=None, help="Redis URL (default $REDIS_URL)")
    parser.add_argument(
        "--namespace", default=None, help="key prefix (default $PODIUM_NAMESPACE or 'podium')"
    )


def run(args: argparse.Namespace) -> int:
    if args.action is not None:
        from podium.agents.cli import outside

        return outside.add(args) if args.action == "add" else outside.remove(args)
    if args.target is not None:
        print(
            f"podium agents: unexpected {args.target!r}; did you mean podium agents add URL?", file=sys.stderr
        )
        return 2
    url = args.redis_url or os.environ.get("REDIS_URL")
    if not url:
        return _over_http(args)
    try:
        keys = Keys(args.namespace) if args.namespace else Keys.from_env()
        redis = connect(url)
    except (ConfigError, ValueError) as exc:
        print(f"podium agents: {exc}", file=sys.stderr)
        return 2

    async def fetch() -> tuple[list[AgentEntry], dict[str, dict[str, Any]]]:
        try:
            registry = Registry(redis, keys)
            entries = await registry.with_queues(await registry.list(include_down=args.all))
            return entries, await breaker_states(redis, keys, [e.name for e in entries])
        finally:
            await redis.aclose()

    try:
        entries, breakers = anyio.run(fetch)
    except (RedisError, OSError) as exc:
        print(f"podium agents: cannot read the registry from {redact(url)}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([{**e.to_dict(), "breaker": breakers.get(e.name)} for e in entries], indent=2))
        return 0
    if not entries:
        hint = "" if args.all else " (--all includes agents with no alive instance)"
        print(f"no agents registered in namespace {keys.namespace!r}{hint}")
        return 0
    print(table(entries, breakers=breakers))
    return 0


def _over_http(args: argparse.Namespace) -> int:
    """Without Redis: the agents the registry's HTTP service lists (the embedded ``podium up``'s own)."""
    from podium.agents.cli.outside import listed

    rows = listed(args)
    if rows is None:
        print(NO_REDIS, file=sys.stderr, end="")
        return 2
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    entries = [_entry(r) for r in rows]
    if not entries:
        print("no agents registered")
        return 0
    print(table([e for e in entries if e is not None]))
    return 0


def _entry(row: dict[str, Any]) -> AgentEntry | None:
    """An entry as ``GET /agents`` gave it (without its inbox figures)."""
    from podium.registry.cards import card_from_json
    from podium.registry.entries import instance_from_json

    try:
        card = card_from_json(
            row["card"], source=f"agent {row.get('name')!r}", require_interfaces=False, key_name=False
        )
    except (KeyError, ValueError, RegistryError):
        return None
    instances = tuple(
        instance_from_json(str(i.get("instance")), json.dumps({**i, "beat": i.get("lastHeartbeat")}))
        for i in row.get("instances") or []
    )
    return AgentEntry(
        name=str(row["name"]),
        card=card,
        registered=float(row.get("registered") or 0),
        signed=bool(row.get("signed")),
        verified_by=row.get("verifiedBy"),
        static=bool(row.get("static")),
        standby=bool(row.get("standby")),
        url=row.get("url"),
        instances=instances,
        token_env=row.get("tokenEnv"),
        health=row.get("health"),
    )


def outside_state(e: AgentEntry) -> str:
    """How an outside agent's last card check went: ``outside``, ``outside (ok)``, ``outside (down: …)``."""
    if e.health is None:
        return "outside"
    if e.health.get("ok"):
        return "outside (ok)"
    return f"outside (down: {str(e.health.get('error') or 'no card')[:60]})"


def table(
    entries: list[AgentEntry], now: float | None = None, breakers: dict[str, dict[str, Any]] | None = None
) -> str:
    """A plain-text table: name, skills, alive instances, last heartbeat, signed, the inbox's backlog —
    queued (not yet delivered), pending (delivered, not acknowledged), the oldest pending request's age,
    waiting/capacity — and the orchestrator's circuit breaker for the agent."""
    now = time.time() if now is None else now
    rows = [("NAME", "SKILLS", "ALIVE", "LAST HEARTBEAT", "SIGNED", "QUEUED", "PENDING", "OLDEST", "LOAD",
             "BREAKER")]  # fmt: skip
    for e in entries:
        alive = outside_state(e) if e.static else str(e.alive) + (" (standby)" if e.standby else "")
        beat = "-" if e.last_heartbeat is None else f"{max(0.0, now - e.last_heartbeat):.1f}s ago"
        signed = f"yes ({e.verified_by})" if e.verified_by else ("yes" if e.signed else "no")
        q = e.queue
        backlog = ("-", "-", "-", "-")
        if q is not None:
            oldest = "-" if q.oldest_pending_age_s is None else f"{q.oldest_pending_age_s:.1f}s"
            load = f"{q.waiting}/{q.capacity}" if q.capacity else f"{q.waiting}/-"
            backlog = (str(q.depth), str(q.pending), oldest, load)
        breaker = (breakers or {}).get(e.name) or {"state": "closed", "failures": 0}
        state = breaker["state"] + (f" ({breaker['failures']} failed)" if breaker.get("failures") else "")
        rows.append((e.name, ", ".join(s.id for s in e.card.skills), alive, beat, signed, *backlog, state))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
