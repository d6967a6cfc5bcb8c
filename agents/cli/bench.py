"""``podium bench NAME ...``: benchmarks. Each lives in ``bench/<name>.py`` with ``configure(parser)`` and
``run(args) -> int``, and is imported only when chosen (or when its help is shown)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from podium.agents.cli import Parser

# name -> (module, one-line help); adding a benchmark is one line here.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "bus": (
        "podium.bench.bus",
        "bus throughput: Podium's consumer loop against the same loop in raw redis-py",
    ),
    "hop": ("podium.bench.hop", "one A2A hop over the bus against bare a2a-sdk over HTTP"),
    "relay": (
        "podium.bench.relay",
        "consume-and-republish through a Consumer against the same work in raw redis-py",
    ),
    "footprint": (
        "podium.bench.footprint",
        "idle memory and time to ready of each agent against a bare a2a-sdk server",
    ),
    "autoscale": (
        "podium.bench.autoscale",
        "KEDA's role on one machine: replicas started and stopped by inbox lag, nothing lost or run twice",
    ),
    "fanout": (
        "podium.bench.fanout",
        "independent steps through the orchestrator: wall time against the slowest branch",
    ),
    "scale": (
        "podium.bench.scale",
        "the orchestrator scaled out: tasks/s and latency through 1..N orchestrator and worker replicas",
    ),
    "cost": (
        "podium.bench.cost",
        "orchestrator CPU and Redis memory per task as plans grow and as more agents are registered",
    ),
    "soak": (
        "podium.bench.soak",
        "podium up under steady load with agent kills and a Redis restart: nothing lost, answered twice or leaking",
    ),
}


class _LazyParser(Parser):
    """A subparser that imports its benchmark module and lets it add arguments only when used."""

    def __init__(self, *args: Any, module: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._module, self._loaded = module, False

    def _load(self) -> None:
        if self._module and not self._loaded:
            self._loaded = True
            try:
                importlib.import_module(self._module).configure(self)
            except ModuleNotFoundError as exc:
                if exc.name != self._module:
                    raise
                self.set_defaults(_bench_missing=True)
            self.set_defaults(_bench_module=self._module)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        self._load()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._load()
        return super().format_help()


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", parser_class=_LazyParser)
    for name, (module, help_text) in BENCHMARKS.items():
        sub.add_parser(name, help=help_text, description=help_text, module=module)


def run(args: argparse.Namespace) -> int:
    module = getattr(args, "_bench_module", None)
    if module is None:
        print(
            f"podium bench: error: name a benchmark: {', '.join(BENCHMARKS)} (see 'podium bench --help')",
            file=sys.stderr,
        )
        return 2
    if getattr(args, "_bench_missing", False):
        print(f"podium bench: '{args.benchmark}' is not available in this build", file=sys.stderr)
        return 2
    return int(importlib.import_module(module).run(args) or 0)
