"""``podium prepare``: make agents ready to receive work before any replica of them runs.

For each agent (every card, or ``--agents``) it creates the inbox stream and its consumer group, starting
at the stream's beginning as a replica would (``0``, so requests already waiting are handled). An
autoscaler that reads the group's lag (KEDA's ``redis-streams`` trigger, ``lagCount``) then sees work
arriving while the agent runs no replica. With ``--standby`` it also registers each agent's card as
*standby*: discoverable while no replica runs, so the orchestrator delegates to it and the request waits
in its inbox until the autoscaler starts one. Idempotent: run it at every deploy (deploy/kubernetes runs
it as a Job).

Redis: ``REDIS_URL`` (a user that may create groups and write cards: ``admin`` from ``podium acl``).

Exit status: 0 when done, 2 for a usage mistake (a bad name, an unknown agent, no REDIS_URL), 1 when Redis
does not answer within ``--startup-timeout`` or refuses the user.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import anyio
from redis.exceptions import NoPermissionError, RedisError

from podium.agents.host.settings import STARTUP_TIMEOUT_ENV, startup_timeout_from_env
from podium.bus.binding import bus_interface
from podium.bus.connection import connect, redact
from podium.bus.errors import ConfigError
from podium.bus.keys import Keys, validate_name
from podium.bus.ready import wait_for_redis
from podium.bus.streams import StreamBus
from podium.registry.errors import RegistryError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="Redis URL (default $REDIS_URL)")
    parser.add_argument("--namespace", default=None, help="key prefix (default $PODIUM_NAMESPACE or podium)")
    parser.add_argument("--agents", default=None, help="comma-separated agents (default: every card)")
    parser.add_argument(
        "--standby",
        action="store_true",
        help="also register each card as standby: discoverable with no replica running (scale to zero)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"give up (exit 1) when Redis does not answer this long (default ${STARTUP_TIMEOUT_ENV} or 60; "
        "0: wait forever)",
    )


def run(args: argparse.Namespace) -> int:
    from podium.registry.cards import card_names

    def fail(message: str, status: int = 2) -> int:
        print(f"podium prepare: {message}", file=sys.stderr)
        return status

    url = args.redis_url or os.environ.get("REDIS_URL")
    if not url:
        return fail("set REDIS_URL or pass --redis-url: the inboxes and cards live in Redis")
    from podium.agents.host.sources import installed_names

    known = [*card_names(), *(n for n in installed_names() if n not in card_names())]
    agents = [a.strip() for a in args.agents.split(",") if a.strip()] if args.agents else known
    try:
        for agent in agents:
            validate_name("agent name", agent)
        unknown = [a for a in agents if a not in known]
        if unknown:
            raise ConfigError(f"no card for {', '.join(unknown)} (cards: {', '.join(known) or 'none'})")
        if not agents:
            raise ConfigError("no agents: no cards found (set PODIUM_CARDS_DIR) and no --agents")
        keys = Keys(args.namespace or os.environ.get("PODIUM_NAMESPACE") or "podium")
        timeout = startup_timeout_from_env() if args.startup_timeout is None else args.startup_timeout
        if not timeout >= 0:
            raise ConfigError(f"--startup-timeout must be 0 (no limit) or more seconds, got {timeout}")
        redis = connect(url)
        if args.standby:  # the standby cards declare the agents' schemes: their settings must be sound
            from podium.agents.host.settings import RuntimeConfig

            RuntimeConfig.from_env(agents[0])
    except (ConfigError, ValueError) as exc:
        return fail(str(exc))
    try:
        done = anyio.run(_prepare, redis, keys, agents, args.standby, timeout)
    except TimeoutError:
        return fail(
            f"Redis at {redact(url)} did not answer within {timeout:g}s; start it, or fix REDIS_URL", 1
        )
    except NoPermissionError as exc:
        return fail(f"Redis refused the user in REDIS_URL ({exc}); use the admin user `podium acl` writes", 1)
    except RedisError as exc:
        return fail(f"Redis at {redact(url)}: {exc}", 1)
    except (RegistryError, ValueError, LookupError) as exc:  # a bad card, key or installed agent
        return fail(str(exc))
    for line in done:
        print(line)
    return 0


def _say_waiting(reason: str, waited: float) -> None:
    print(f"podium prepare: waiting for Redis ({reason}, {waited:.0f}s so far)", file=sys.stderr)


async def _prepare(redis: Any, keys: Keys, agents: list[str], standby: bool, wait_s: float) -> list[str]:
    from podium.agents.host.settings import RuntimeConfig
    from podium.agents.host.sources import resolve
    from podium.registry.cards import load_card
    from podium.registry.store import Registry

    try:
        with anyio.fail_after(wait_s or None):
            await wait_for_redis(redis, on_wait=_say_waiting)
        bus = StreamBus(redis, keys)
        registry = Registry.from_env(redis, keys)
        done = []
        moved = await registry.migrate_legacy()
        if moved:
            done.append(f"moved {moved} card(s) from the old shared hash {keys.cards()} to one key per card")
        for agent in agents:
            await bus.ensure_group(keys.inbox(agent), agent, start_id="0")
            note = f"{agent}: group {agent!r} on {keys.inbox(agent)}"
            if standby:
                # The bus interface only: a replica replaces the card with its full one when it starts.
                # The schemes the agent will require, read as the agent reads them (RuntimeConfig).
                settings = RuntimeConfig.from_env(agent)
                card = load_card(
                    resolve(agent).card or agent,
                    expect_name=agent,
                    interfaces=[bus_interface(keys.namespace, agent)],
                    security_token_required=settings.authenticated,
                    oidc_issuer=settings.oidc_issuer,
                )
                await registry.register_standby(card)
                note += "; card registered as standby"
            done.append(note)
        return done
    finally:
        await redis.aclose()
