"""The ``podium`` command. Each subcommand lives in ``agents/cli/<name>.py`` and is imported only
when used, so ``podium --help`` stays fast and one command's dependencies never break another.

Every usage mistake, in every command, is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from podium.agents.up.lifeline import tie_to_parent


def _quiet_unconfigured_tracing() -> None:
    """a2a-sdk wraps every handler call in OpenTelemetry spans. Without an OpenTelemetry exporter
    configured those spans go nowhere yet cost about 15% of an agent's CPU, so they are off unless the
    user configures OpenTelemetry (any ``OTEL_*`` variable) or asks for them explicitly."""
    if not any(name.startswith("OTEL_") for name in os.environ):
        os.environ["OTEL_INSTRUMENTATION_A2A_SDK_ENABLED"] = "false"


# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("podium.agents.cli.up", "run the whole system on this machine"),
    "ask": ("podium.agents.cli.ask", "ask the orchestrator a question over A2A"),
    "eval": ("podium.agents.cli.eval", "score an orchestrator's answers against a question bank (JSONL)"),
    "agent": ("podium.agents.cli.agent", "run one agent: A2A HTTP + bus consumer + registry heartbeat"),
    "registry": ("podium.agents.cli.registry", "run the registry HTTP service"),
    "agents": ("podium.agents.cli.agents", "list registered agents and their health"),
    "mcp": ("podium.agents.cli.mcp", "run one MCP server over stdio or Streamable HTTP"),
    "trace": ("podium.agents.cli.trace", "show a task's decisions"),
    "dlq": ("podium.agents.cli.dlq", "list or replay dead letters"),
    "console": (
        "podium.agents.cli.console",
        "the live web console: agents, tasks, traces, dead letters",
    ),
    "bench": ("podium.agents.cli.bench", "run benchmarks"),
    "card": ("podium.agents.cli.card", "sign cards and generate signing keys"),
    "acl": ("podium.agents.cli.acl", "write a Redis ACL file: one least-privilege user per agent"),
    "clients": ("podium.agents.cli.clients", "outside callers' credentials: add, list, remove"),
    "workflow": ("podium.agents.cli.workflow", "add, list or remove named workflows (orchestrator skills)"),
    "prepare": (
        "podium.agents.cli.prepare",
        "create agents' inbox groups (and standby cards) before any replica runs",
    ),
    "new": ("podium.agents.cli.new", "scaffold a new agent project: podium new agent NAME"),
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (the usage is one ``--help`` away); subparsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"invalid level {value!r}; choose from {', '.join(LOG_LEVELS)}")
    return level


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = Parser(prog="podium", description="Podium: many A2A agents on one Redis Streams bus")
    parser.add_argument(
        "--log-level",
        type=_log_level,
        default=os.environ.get("PODIUM_LOG_LEVEL", "WARNING"),
        help=f"logging level: {', '.join(LOG_LEVELS)} (default $PODIUM_LOG_LEVEL or WARNING)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if a in COMMANDS), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            try:
                importlib.import_module(module).configure(p)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                p.set_defaults(_missing=name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if not tie_to_parent():
        print("podium: the process that started this one has already exited; not starting", file=sys.stderr)
        return 1
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_unconfigured_tracing()
    parser = build_parser(argv)
    # argparse checks a default from PODIUM_LOG_LEVEL with _log_level too.
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "_missing", None):  # whatever follows belongs to the missing command
        print(f"podium: '{args.command}' is not available in this build", file=sys.stderr)
        return 2
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.command:
        print(f"podium: error: name a command: {', '.join(COMMANDS)} (see 'podium --help')", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
