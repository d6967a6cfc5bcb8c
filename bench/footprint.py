"""``podium bench footprint``: idle memory and time-to-ready of Podium's processes against a bare a2a-sdk server.

Each process is started the same way (a fresh Python interpreter, one after the other, against the same
Redis), timed from start to its ready line, left idle for ``--settle`` seconds, and measured: the resident
memory (RSS, from Linux's /proc) of the process and of every process it started (the MCP servers an agent
mounts over stdio). Then it is stopped. Measured:

* ``bare``: ``python -m bench.bare_echo``, the a2a-sdk's ``DefaultRequestHandler``, in-memory task store
  and routes on uvicorn, with an echo executor: the baseline;
* ``echo``: ``podium agent echo`` (HTTP + bus consumer + Redis task store), without registering;
* each specialist (and any other ``--agents``), with the tool servers it mounts;
* ``up``: ``podium up`` with ``REDIS_URL`` (every agent its own process), the whole tree;
* with ``--engines``: one agent (``--engine-agent``, the researcher) once per engine, ``offline`` (no
  model), ``anthropic`` (a key set: Claude's client loaded) and ``openai`` (``OPENAI_BASE_URL`` set: the
  OpenAI-compatible engine), each checked in its log to run that engine. No model is called: what is
  measured is the engine's weight in an idle agent process.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from podium.bench.runner import Progress, emit, measure_with_redis
from podium.bus.errors import ConfigError

PROC = Path("/proc")
SPECIALISTS = ("researcher", "analyst", "writer", "reviewer")
UP_READY = "Ctrl-C stops everything."
ENGINES = ("offline", "anthropic", "openai")
# what each engine needs in the environment; nothing is called while the agent idles
_ENGINE_ENV = {
    "offline": {"PODIUM_LLM_PROVIDER": "offline"},
    "anthropic": {"PODIUM_LLM_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "sk-ant-footprint-unused"},
    "openai": {"PODIUM_LLM_PROVIDER": "openai", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="Redis to use (default: a private redis-server)")
    parser.add_argument(
        "--agents",
        default=",".join(SPECIALISTS),
        help=f"comma-separated agents to measure besides echo (default {','.join(SPECIALISTS)}; '' for none)",
    )
    parser.add_argument("--no-up", action="store_true", help="skip measuring podium up")
    parser.add_argument("--settle", type=float, default=2.0, help="idle seconds before measuring (2)")
    parser.add_argument(
        "--engines",
        default="",
        help=f"comma-separated engines to measure one agent with ({','.join(ENGINES)}; default none)",
    )
    parser.add_argument("--engine-agent", default="researcher", help="the agent --engines runs (researcher)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(raw[raw.rindex(")") + 2 :].split()[1])
    found, frontier = {root}, {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return sorted(found)


def _rss_kb(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0  # gone, or a zombie


class _Measured:
    """One process (and its children) from start to ready, measured idle, then stopped."""

    def __init__(
        self,
        label: str,
        cmd: list[str],
        ready: re.Pattern[str],
        env: dict[str, str],
        expect: str | None = None,
    ) -> None:
        self.label, self.cmd, self.ready, self.env, self.expect = label, cmd, ready, env, expect

    def run(self, settle: float, timeout: float = 120) -> dict[str, Any]:
        log = tempfile.NamedTemporaryFile(
            prefix=f"podium-footprint-{self.label}-", suffix=".log", delete=False
        )
        start = time.perf_counter()
        proc = subprocess.Popen(
            self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        try:
            while True:
                text = Path(log.name).read_text(errors="replace")
                if self.ready.search(text):
                    ready_s = time.perf_counter() - start
                    break
                if proc.poll() is not None:
                    raise ConfigError(f"{self.label} exited before it was ready:\n{text[-2000:]}")
                if time.perf_counter() - start > timeout:
                    raise ConfigError(f"{self.label} was not ready within {timeout:g}s:\n{text[-2000:]}")
                time.sleep(0.02)
            if self.expect is not None and self.expect not in text:
                raise ConfigError(f"{self.label}: its log does not say {self.expect!r}:\n{text[-2000:]}")
            time.sleep(settle)
            pids = _tree(proc.pid)
            rss = {pid: _rss_kb(pid) for pid in pids}
            return {
                "rss_mb": round(sum(rss.values()) / 1024, 1),
                "processes": len([kb for kb in rss.values() if kb]),
                "main_rss_mb": round(rss[proc.pid] / 1024, 1),
                "ready_s": round(ready_s, 3),
            }
        finally:
            _stop(proc)
            log.close()
            os.unlink(log.name)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


async def _measure(args: argparse.Namespace, redis_url: str, progress: Progress) -> dict[str, Any]:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": redis_url,
        "PODIUM_NAMESPACE": namespace,
    }
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "PODIUM_LLM_PROVIDER"):
        env.pop(var, None)  # offline mode: measured is Podium, not a model client at rest (but --engines)
    podium = [sys.executable, "-m", "podium.agents.cli"]

    def agent(name: str) -> _Measured:
        cmd = [*podium, "agent", name, "--no-register", "--instance", f"fp-{name}"]
        return _Measured(name, cmd, re.compile(rf"podium agent {re.escape(name)} ready: "), env)

    progress.say("bare a2a-sdk echo server")
    bare = _Measured(
        "bare", [sys.executable, "-m", "podium.bench.bare_echo"], re.compile("bare echo ready: "), env
    )
    out: dict[str, Any] = {"benchmark": "footprint", "settle_s": args.settle}
    bare_r = bare.run(args.settle)
    progress.say("podium agent echo")
    echo_r = agent("echo").run(args.settle)
    out.update(
        bare_rss_mb=bare_r["rss_mb"],
        bare_ready_s=bare_r["ready_s"],
        echo_rss_mb=echo_r["rss_mb"],
        echo_ready_s=echo_r["ready_s"],
        rss_ratio=round(echo_r["rss_mb"] / bare_r["rss_mb"], 3),
        ready_ratio=round(echo_r["ready_s"] / bare_r["ready_s"], 3),
    )
    agents: dict[str, Any] = {}
    for name in _names(args.agents):
        progress.say(f"podium agent {name} (with the MCP servers it mounts)")
        result = agent(name).run(args.settle)
        result["rss_ratio"] = round(result["rss_mb"] / bare_r["rss_mb"], 3)
        agents[name] = result
    out["agents"] = agents
    engines: dict[str, Any] = {}
    for engine in _names(args.engines):
        name = args.engine_agent
        progress.say(f"podium agent {name} with engine {engine}")
        cmd = [*podium, "agent", name, "--no-register", "--instance", f"fp-{name}-{engine}"]
        expect = None if engine == "offline" else f"via {engine}"
        measured = _Measured(f"{name}-{engine}", cmd, re.compile(rf"podium agent {re.escape(name)} ready: "),
                             {**env, **_ENGINE_ENV[engine], "PODIUM_LOG_LEVEL": "INFO"}, expect)  # fmt: skip
        result = measured.run(args.settle)
        result["rss_ratio"] = round(result["rss_mb"] / bare_r["rss_mb"], 3)
        engines[engine] = result
    if "offline" in engines:
        for result in engines.values():
            result["offline_ratio"] = round(result["rss_mb"] / engines["offline"]["rss_mb"], 3)
    if engines:
        out["engines"] = engines
        out["engine_agent"] = args.engine_agent
    if not args.no_up:
        progress.say("podium up (every agent its own process)")
        up = _Measured("up", [*podium, "up", "--any-port"], re.compile(re.escape(UP_READY)), env)
        out["up"] = up.run(args.settle, timeout=240)
    return out


def _names(csv: str) -> list[str]:
    return [a.strip() for a in csv.split(",") if a.strip()]


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; returns 2 for bad arguments, an unusable Redis or a platform without /proc."""
    if args.settle < 0:
        print("podium bench footprint: --settle must be at least 0", file=sys.stderr)
        return 2
    unknown = [e for e in _names(args.engines) if e not in ENGINES]
    if unknown:
        print(f"podium bench footprint: unknown engine {unknown[0]!r} in --engines; choose from "
              f"{', '.join(ENGINES)}", file=sys.stderr)  # fmt: skip
        return 2
    if not (PROC / "self" / "status").exists():
        print("podium bench footprint: needs Linux /proc to read memory", file=sys.stderr)
        return 2
    result = measure_with_redis("footprint", args, _measure)
    if result is None:
        return 2
    lines = [
        f"idle RSS after {result['settle_s']:g}s, and time to ready:",
        f"  bare a2a-sdk echo  {result['bare_rss_mb']:7.1f} MB  {result['bare_ready_s']:6.2f} s",
        f"  podium agent echo  {result['echo_rss_mb']:7.1f} MB  {result['echo_ready_s']:6.2f} s  "
        f"(x{result['rss_ratio']:.2f} RSS)",
    ]
    for name, r in result["agents"].items():
        lines.append(
            f"  {name:<17s} {r['rss_mb']:7.1f} MB  {r['ready_s']:6.2f} s  (x{r['rss_ratio']:.2f} RSS, "
            f"{r['processes']} process{'es' if r['processes'] != 1 else ''})"
        )
    if "up" in result:
        r = result["up"]
        lines.append(
            f"  podium up         {r['rss_mb']:7.1f} MB  {r['ready_s']:6.2f} s  ({r['processes']} processes)"
        )
    for engine, r in result.get("engines", {}).items():
        vs = f", x{r['offline_ratio']:.2f} of offline" if "offline_ratio" in r else ""
        lines.append(
            f"  {result['engine_agent'] + ' + ' + engine:<22s} {r['rss_mb']:7.1f} MB  {r['ready_s']:6.2f} s  "
            f"(x{r['rss_ratio']:.2f} RSS{vs})"
        )
    emit(result, args.json, lines)
    return 0
