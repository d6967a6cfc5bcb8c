"""``podium bench soak``: the whole system under a steady load and faults, to show nothing is lost or answered
twice and nothing grows without bound.

It starts a private redis-server (append-only, with the ACL file ``podium acl`` writes) and ``podium up`` on it
(each agent as its own Redis user), then for ``--minutes`` sends ``--rate`` questions a second, mixed (a
computation, a documentation question, both at once to the orchestrator; a line to the echo agent), from
``--clients`` callers over A2A HTTP, each with a token of its own (``podium clients add``). Each caller sends
without waiting (``returnImmediately``) and follows its own tasks with GetTask; at the end it checks ListTasks
lists only its own and another caller's task ids answer TaskNotFound. Every ``--kill-every`` seconds a random agent
process is SIGKILLed (``podium up``'s supervisor restarts it), and Redis is restarted once, halfway. After the
last send the callers wait up to ``--drain`` seconds for what is still running.

Reported: requests sent, answered, failed (by reason), lost (accepted, never finished), answered twice (a task
whose event log holds more than one final status), p50/p99 from send to the final state a caller saw, and the
growth from the first minute to the last of each agent's RSS and of Redis's memory and key count (by kind).
``--json`` prints one object: ``sent``, ``answered``, ``failed``, ``failedReasons``, ``lost``, ``duplicated``,
``latencyMs``, ``rssGrowth`` (MB per agent), ``redisMemoryGrowth`` (bytes), ``redisKeyGrowth`` (keys), and the
samples behind them. Exit status 1 when anything was lost or answered twice, 2 for a bad option.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from typing import Any

import anyio

from podium.bench.soak_clients import Caller, Outcome, questions
from podium.bench.soak_system import System, redis_stats
from podium.bus.connection import connect
from podium.bus.errors import ConfigError
from podium.bus.task_store import TASK_TTL_ENV

DEFAULT_AGENTS = ("orchestrator", "researcher", "analyst", "writer", "reviewer", "echo")
SAMPLE_EVERY_S = 5.0


def progress(message: str) -> None:
    print(f"podium bench soak: {message}", file=sys.stderr, flush=True)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to send (10)")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="questions a second, all callers together (1)"
    )
    parser.add_argument(
        "--kill-every", type=float, default=30.0, help="SIGKILL a random agent every S seconds (30; 0: never)"
    )
    parser.add_argument("--clients", type=int, default=4, help="callers, each following its own tasks (4)")
    parser.add_argument(
        "--drain", type=float, default=180.0, help="seconds to wait for the last answers (180)"
    )
    parser.add_argument(
        "--task-ttl",
        type=float,
        default=60.0,
        help="PODIUM_TASK_TTL for the system: seconds finished tasks are kept (60), so retention applies",
    )
    parser.add_argument("--no-redis-restart", action="store_true", help="do not restart Redis halfway")
    parser.add_argument(
        "--agents", default=",".join(DEFAULT_AGENTS), help=f"agents to run ({','.join(DEFAULT_AGENTS)})"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed for the question mix and kills")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    problems = [
        f"--{name} must be more than 0"
        for name, value in (("minutes", args.minutes), ("rate", args.rate), ("clients", args.clients))
        if not value > 0
    ]
    if args.kill_every < 0 or args.drain < 0:
        problems.append("--kill-every and --drain must be 0 or more")
    if not args.task_ttl >= 1:
        problems.append("--task-ttl must be at least 1 second")
    if "orchestrator" not in agents and "echo" not in agents:
        problems.append("--agents must include orchestrator or echo: the questions go to them")
    if problems:
        print(f"podium bench soak: {problems[0]}", file=sys.stderr)
        return 2
    names = [f"client{i + 1}" for i in range(args.clients)]
    system = System(agents, callers=names, extra_env={TASK_TTL_ENV: str(int(args.task_ttl))})
    try:
        progress(f"starting redis-server (append-only, ACLs on) and podium up with {', '.join(agents)}")
        system.start()
        system.wait_ready()
        result = anyio.run(soak, system, args)
    except ConfigError as exc:
        print(f"podium bench soak: {exc}", file=sys.stderr)
        return 1
    finally:
        system.close()
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print("\n".join(summary(result)))
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


async def soak(system: System, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    duration = args.minutes * 60
    admin = connect(system.url())
    samples: list[dict[str, Any]] = []
    kills: list[dict[str, Any]] = []
    restart: dict[str, Any] = {}
    outcomes: list[Outcome] = []
    targets = await _urls(admin, system)
    callers = [Caller(name, targets, system.tokens[name], admin, system.keys) for name in system.callers]
    asks = questions([t for t in ("orchestrator", "echo") if t in targets])
    started = time.monotonic()
    try:
        async with anyio.create_task_group() as tg:
            every = min(SAMPLE_EVERY_S, duration / 20)
            tg.start_soon(_sample, system, admin, samples, started, duration, every)
            if args.kill_every:
                tg.start_soon(_killer, system, rng, args.kill_every, kills, started, duration)
            if not args.no_redis_restart:
                tg.start_soon(_restart_redis, system, restart, started, duration)
            async with anyio.create_task_group() as sends:
                for n in range(int(duration * args.rate)):
                    at = started + n / args.rate
                    await anyio.sleep(max(0.0, at - time.monotonic()))
                    caller = callers[n % len(callers)]
                    target, text = asks(rng, n)
                    sends.start_soon(caller.ask, target, text, args.drain + duration, outcomes)
                progress(f"sent {n + 1}; waiting up to {args.drain:g}s for the last answers")
                drain_until = time.monotonic() + args.drain
                while len(outcomes) < n + 1 and time.monotonic() < drain_until:  # noqa: ASYNC110 - callers append
                    await anyio.sleep(0.5)
                sends.cancel_scope.cancel()
            tg.cancel_scope.cancel()
        unfinished = [u for c in callers for u in await c.unfinished(started)]
        others = {c.name: next((o for o in callers if o is not c and o.mine), None) for c in callers}
        isolation = [await c.check_isolation(others[c.name]) for c in callers]
    finally:
        for caller in callers:
            await caller.close()
        await admin.aclose()
    result = report(args, outcomes, samples, kills, restart, isolation, system.restarts, n + 1)
    result["unfinished"] = unfinished
    by_minute: dict[int, list[float]] = {}
    for o in outcomes:
        if o.state == "completed":
            by_minute.setdefault(int((o.sent_at - started) // 60), []).append(o.latency_ms)
    result["latencyP50ByMinuteMs"] = [round(statistics.median(v), 1) for _, v in sorted(by_minute.items())]
    result["series"] = [
        [s["atS"], s.get("keys"), s.get("memory"), round(sum(s["rssMb"].values()), 1)] for s in samples
    ]
    return result


async def _urls(admin: Any, system: System) -> dict[str, str]:
    from podium.registry.store import Registry

    found: dict[str, str] = {}
    for entry in await Registry(admin, system.keys).list():
        for interface in entry.card.supported_interfaces:
            if interface.protocol_binding == "JSONRPC" and entry.name in system.agents:
                found[entry.name] = interface.url
    return found


async def _sample(
    system: System, admin: Any, samples: list[dict[str, Any]], started: float, duration: float, every: float
) -> None:
    while time.monotonic() - started <= duration:
        sample: dict[str, Any] = {"atS": round(time.monotonic() - started, 1), "rssMb": system.rss_mb()}
        try:
            sample |= await redis_stats(admin, system.keys)
        except (OSError, Exception) as exc:  # Redis restarting: this sample has no Redis figures
            sample["redisError"] = type(exc).__name__
        samples.append(sample)
        await anyio.sleep(every)


async def _killer(
    system: System,
    rng: random.Random,
    every: float,
    kills: list[dict[str, Any]],
    started: float,
    duration: float,
) -> None:
    while True:
        await anyio.sleep(every)
        if time.monotonic() - started > duration:
            return
        name = rng.choice(system.agents)
        pid = await anyio.to_thread.run_sync(system.kill_agent, name)
        kills.append({"agent": name, "pid": pid, "atS": round(time.monotonic() - started, 1)})
        progress(f"SIGKILLed {name} (pid {pid})")


async def _restart_redis(system: System, restart: dict[str, Any], started: float, duration: float) -> None:
    await anyio.sleep(duration * 0.5 + 2)
    restart["atS"] = round(time.monotonic() - started, 1)
    restart["awayS"] = round(await anyio.to_thread.run_sync(system.restart_redis), 2)
    progress(f"restarted Redis (away {restart['awayS']}s)")


def report(
    args: argparse.Namespace,
    outcomes: list[Outcome],
    samples: list[dict[str, Any]],
    kills: list[dict[str, Any]],
    restart: dict[str, Any],
    isolation: list[dict[str, Any]],
    restarted: list[str],
    sent: int,
) -> dict[str, Any]:
    answered = [o for o in outcomes if o.state == "completed"]
    failed = [o for o in outcomes if o.state not in ("completed", "lost")]
    reasons: dict[str, int] = {}
    for o in failed:
        reasons[o.reason] = reasons.get(o.reason, 0) + 1
    latencies = sorted(o.latency_ms for o in answered)
    # The first minute once retention applies (the first tasks have outlived the TTL) against the last one;
    # shorter windows when the run is too short for two minutes after that.
    end = max((s["atS"] for s in samples), default=0.0)
    warm = min(args.task_ttl + 10, end / 3)
    window = max(1.0, min(60.0, (end - warm) / 2))
    first = [s for s in samples if warm <= s["atS"] <= warm + window]
    last = [s for s in samples if s["atS"] >= end - window]
    agents = sorted({a for s in samples for a in s["rssMb"]})
    rss = {a: (_median(first, "rssMb", a), _median(last, "rssMb", a)) for a in agents}
    memory = (_median(first, "memory"), _median(last, "memory"))
    keys = (_median(first, "keys"), _median(last, "keys"))
    kinds = sorted({k for s in samples for k in s.get("kinds", {})})
    by_kind = {k: (_median(first, "kinds", k, 0), _median(last, "kinds", k, 0)) for k in kinds}
    return {
        "minutes": args.minutes,
        "rate": args.rate,
        "clients": args.clients,
        "sent": sent,
        "answered": len(answered),
        "failed": len(failed),
        "failedReasons": reasons,
        "lost": sum(1 for o in outcomes if o.state == "lost") + (sent - len(outcomes)),
        "duplicated": sum(1 for o in outcomes if o.final_events > 1),
        "byTarget": {t: sum(1 for o in answered if o.target == t) for t in sorted({o.target for o in outcomes})},
        "latencyMs": {"p50": _pct(latencies, 50), "p99": _pct(latencies, 99)},
        "rssMb": {a: {"first": f, "last": la} for a, (f, la) in rss.items()},
        "rssGrowth": {a: _diff(f, la) for a, (f, la) in rss.items()},
        "redisMemory": {"first": memory[0], "last": memory[1]},
        "redisMemoryGrowth": _diff(*memory),
        "redisKeys": {"first": keys[0], "last": keys[1], "byKind": {k: {"first": f, "last": la} for k, (f, la) in by_kind.items()}},
        "redisKeyGrowth": _diff(*keys),
        "windowS": round(window, 1),
        "firstWindowAtS": round(warm, 1),
        "taskTtlS": args.task_ttl,
        "kills": kills,
        "restartsSeen": len(restarted),
        "redisRestart": restart,
        "isolation": isolation,
        "samples": len(samples),
    }  # fmt: skip


def summary(r: dict[str, Any]) -> list[str]:
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(r["failedReasons"].items())) or "none"
    lines = [
        f"soak: {r['minutes']:g} min at {r['rate']:g}/s from {r['clients']} callers; {len(r['kills'])} agents "
        f"SIGKILLed ({r['restartsSeen']} restarts seen), Redis restarted {'once' if r['redisRestart'] else 'never'}",
        f"sent {r['sent']}, answered {r['answered']}, failed {r['failed']} ({reasons}), lost {r['lost']}, "
        f"answered twice {r['duplicated']}",
        f"latency p50 {r['latencyMs']['p50']} ms, p99 {r['latencyMs']['p99']} ms (send to final state seen)",
        f"growth, from the {r['windowS']:g}s after retention applies (at {r['firstWindowAtS']:g}s, task TTL "
        f"{r['taskTtlS']:g}s) to the last {r['windowS']:g}s:",
    ]
    for agent, grow in r["rssGrowth"].items():
        first = r["rssMb"][agent]["first"]
        lines.append(f"  {agent:<13} RSS {first} MB -> {r['rssMb'][agent]['last']} MB ({_signed(grow)} MB)")
    mem = r["redisMemory"]
    lines.append(f"  redis memory {mem['first']} -> {mem['last']} bytes ({_signed(r['redisMemoryGrowth'])})")
    keys = r["redisKeys"]
    kinds = ", ".join(f"{k} {v['first']}->{v['last']}" for k, v in keys["byKind"].items())
    lines.append(f"  redis keys {keys['first']} -> {keys['last']} ({_signed(r['redisKeyGrowth'])}): {kinds}")
    return lines


def _median(
    samples: list[dict[str, Any]], field: str, key: str | None = None, absent: Any = None
) -> float | None:
    """The median of ``sample[field]`` (or ``sample[field][key]``, ``absent`` when missing) over the samples
    that have ``field``."""
    values = [
        v
        for s in samples
        if field in s and (v := s[field] if key is None else s[field].get(key, absent)) is not None
    ]
    return round(statistics.median(values), 1) if values else None


def _diff(first: float | None, last: float | None) -> float | None:
    return None if first is None or last is None else round(last - first, 1)


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * p / 100))], 1)


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+g}"
