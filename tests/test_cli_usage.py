"""Every usage mistake, in every `podium` command, is one line on stderr and exit status 2 — never a
traceback. Each case runs the real CLI in a subprocess. A command added to ``podium.agents.cli.COMMANDS`` must add
its cases here (a test checks that every command has some)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from podium.agents import cli
from tests.support import ROOT

UNREACHABLE = "redis://127.0.0.1:1/0"  # refused at once; nothing in these cases may wait for it


@dataclass(frozen=True)
class Mistake:
    args: tuple[str, ...]
    says: str  # a phrase the one line must contain
    env: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.env.items())
        return " ".join(filter(None, [extra, "podium", *self.args]))


def m(*args: str, says: str, **env: str) -> Mistake:
    return Mistake(args, says, env)


MISTAKES = [
    m(says="name a command"),
    m("nosuchcommand", says="invalid choice"),
    m("--log-level", "LOUD", "agents", says="invalid level 'LOUD'"),
    m("agents", says="invalid level 'loud'", PODIUM_LOG_LEVEL="loud"),
    # up
    m("up", "--bogus", says="unrecognized arguments: --bogus"),
    m("up", "--agents", "nobody", says="unknown agent(s) nobody"),
    m("up", "--registry-port", "x", says="invalid int value"),
    m("up", "--startup-timeout", "-1", says="--startup-timeout must be 0"),
    m("up", "--startup-timeout", "soon", says="invalid float value"),
    m("up", "--redis-url", "http://nope", says="REDIS_URL: unsupported scheme"),
    m("up", "--namespace", "bad name", says="namespace"),
    m("up", "--replicas", "analyst", says="--replicas 'analyst': expected NAME=N"),
    m("up", "--replicas", "analyst=0", says="expected NAME=N with N from 1 to 64"),
    m("up", "--replicas", "nobody=2", says="nobody is not one of the agents"),
    m("up", "--agents", "echo", "--replicas", "analyst=2", says="analyst is not one of the agents"),
    m("up", "--replicas", "analyst=2", says="--replicas needs Redis", REDIS_URL=""),
    m("up", "--console-port", "70000", says="--console-port must be within 0-65535"),
    # ask (the lead's; this flag is wrong whether or not the command exists in this build)
    m("ask", "--no-such-flag", says="podium"),
    # eval
    m("eval", says="the following arguments are required: file"),
    m("eval", "no-such-bank.jsonl", says="no-such-bank.jsonl: cannot read it"),
    m("eval", "bank.jsonl", "--min-pass-rate", "2", says="outside 0..1"),
    m("eval", "bank.jsonl", "--min-pass-rate", "most", says="give a rate like 0.9 or 90%"),
    m("eval", "bank.jsonl", "--concurrency", "0", says="must be greater than 0"),
    m("eval", "bank.jsonl", "--timeout", "soon", says="is not a float"),
    # prepare
    m("prepare", says="set REDIS_URL or pass --redis-url", REDIS_URL=""),
    m("prepare", "--agents", "nobody", says="no card for nobody", REDIS_URL=UNREACHABLE),
    m("prepare", "--agents", "bad name", says="invalid agent name", REDIS_URL=UNREACHABLE),
    m("prepare", "--namespace", "bad name", says="namespace", REDIS_URL=UNREACHABLE),
    m("prepare", "--startup-timeout", "-1", says="--startup-timeout must be 0", REDIS_URL=UNREACHABLE),
    # agent
    m("agent", says="name an agent (podium agent NAME)"),
    m("agent", "nosuchagent", says="no agent named 'nosuchagent'"),
    m("agent", "--card", str(ROOT / "cards/echo.json"), says="--card needs --executor package.module"),
    m("agent", "echo", "--executor", "x.y", says="--executor needs --card FILE"),
    m("agent", "--card", "nope.json", "--executor", "x.y", says="--card nope.json: no such file"),
    m(
        "agent",
        "--card",
        str(ROOT / "cards/echo.json"),
        "--executor",
        "no_such_mod",
        says="cannot import 'no_such_mod'",
    ),
    # new
    m("new", "agent", "Bad_Name", says="agent name 'Bad_Name': use 2-64 lowercase"),
    m("new", "agent", "echo", says="a built-in agent's; choose another"),
    m("new", "agent", "fine", "--dir", str(ROOT / "pyproject.toml"), says="pyproject.toml"),
    m("new", "thing", "x", says="invalid choice: 'thing'"),
    m("agent", "echo", "--port", "x", says="invalid int value"),
    m("agent", "echo", "--port", "70000", says="port must be within 0-65535"),
    m("agent", "echo", "--concurrency", "0", says="concurrency must be at least 1"),
    m("agent", "echo", "--startup-timeout", "-1", says="startup-timeout must be 0"),
    m("agent", "echo", "--grace", "-1", says="grace must be within 0-3600 seconds"),
    m("agent", "echo", says="PODIUM_SHUTDOWN_GRACE_S: expected a number", PODIUM_SHUTDOWN_GRACE_S="soon"),
    m("agent", "echo", "--redis-url", "http://nope", says="REDIS_URL: unsupported scheme"),
    m("agent", "echo", "--namespace", "bad name", says="namespace"),
    m("agent", "echo", says="PODIUM_STARTUP_TIMEOUT='soon'", PODIUM_STARTUP_TIMEOUT="soon"),
    # registry
    m("registry", "--port", "x", says="invalid int value"),
    m("registry", "--trusted-keys", "/nonexistent/keys", says="no such trusted key file or directory"),
    m("registry", "--redis-url", "http://nope", says="REDIS_URL: unsupported scheme"),
    # agents
    m("agents", says="REDIS_URL is not set"),
    m("agents", "--redis-url", "http://nope", says="REDIS_URL: unsupported scheme"),
    m("agents", "--bogus", says="unrecognized arguments: --bogus"),
    # mcp
    m("mcp", says="required: name"),
    m("mcp", "nosuch", says="invalid choice: 'nosuch'"),
    m("mcp", "calc", "--transport", "pigeon", says="invalid choice: 'pigeon'"),
    m("mcp", "calc", "--docs-dir", ".", says="--docs-dir applies only to the docs server"),
    m("mcp", "docs", "--docs-dir", "/nonexistent/docs", says="is not a directory"),
    m("mcp", "calc", "--transport", "http", says="PODIUM_MCP_PORT='abc'", PODIUM_MCP_PORT="abc"),
    # trace (the lead's; as for ask)
    m("trace", "--no-such-flag", says="podium"),
    # dlq
    m("workflow", says="the following arguments are required: action"),
    m("workflow", "add", says="add needs a FILE"),
    m("workflow", "add", "/nonexistent/flow.yaml", says="/nonexistent/flow.yaml: cannot read it"),
    m("workflow", "remove", says="remove needs a NAME"),
    m("workflow", "add", "x.yaml", "--redis-url", "nope://", says="REDIS_URL"),
    m("dlq", says="set REDIS_URL or pass --redis-url"),
    m("dlq", "--count", "x", says="invalid int value"),
    m("dlq", "bad name", "--redis-url", UNREACHABLE, says="invalid agent 'bad name'"),
    m("dlq", "--replay", "--redis-url", UNREACHABLE, says="--replay needs an AGENT"),
    # console
    m("console", says="set REDIS_URL or pass --redis-url"),
    m("console", "--port", "x", says="invalid int value"),
    m("console", "--port", "70000", "--redis-url", UNREACHABLE, says="--port must be within 0-65535"),
    m("console", "--host", "0.0.0.0", "--redis-url", UNREACHABLE, says="beyond loopback: give --token"),
    m("console", "--redis-url", "http://nope", says="REDIS_URL: unsupported scheme"),
    m("console", "--namespace", "bad name", "--redis-url", UNREACHABLE, says="namespace"),
    # bench
    m("bench", says="name a benchmark"),
    m("bench", "nosuch", says="invalid choice: 'nosuch'"),
    m("bench", "bus", "--messages", "abc", says="invalid int value"),
    # acl
    m("acl", says="no password for user 'admin': set PODIUM_REDIS_PASSWORD_ADMIN"),
    m("acl", "--env-file", "/nonexistent/dir/podium.env", says="cannot write /nonexistent/dir/podium.env"),
    m("acl", "--namespace", "bad name", "--env-file", "x.env", says="namespace"),
    m(
        "acl",
        "--agents",
        "admin",
        says="may not be named 'admin'",
        **{f"PODIUM_REDIS_PASSWORD_{u}": "pw" for u in ("ADMIN", "REGISTRY", "MCP")},
    ),
    # clients
    m("clients", says="required: ACTION"),
    m("clients", "add", "alpha", says="no clients file: pass --file FILE or set PODIUM_CLIENTS_FILE"),
    m("clients", "add", "bad name", "--file", "/nonexistent/c.json", says="client name 'bad name'"),
    m("clients", "add", "x", "--scope", "root", "--file", "c.json", says="invalid choice: 'root'"),
    m("clients", "remove", "nobody", "--file", "/nonexistent/c.json", says="no client 'nobody'"),
    m("up", "--host", "0.0.0.0", "--any-port", says="refusing to listen on 0.0.0.0 with no authentication"),
    m("agent", "echo", "--host", "0.0.0.0", says="refusing to listen on 0.0.0.0 with no authentication"),
    m(
        "mcp",
        "calc",
        "--transport",
        "http",
        "--host",
        "0.0.0.0",
        says="set PODIUM_MCP_TOKEN for MCP server calc",
    ),
    # card
    m("card", says="required: ACTION"),
    m("card", "keygen", says="required: --out"),
    m("card", "sign", "nosuch", "--key", "k.pem", says="no card named 'nosuch'"),
    m("card", "sign", "echo", "--key", "/nonexistent/k.pem", says="cannot read key"),
    m("card", "verify", "echo", says="give --trusted-keys"),
]


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODIUM_", "REDIS_URL", "OTEL_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def _check(mistake: Mistake, code: int | str | None, out: str, err: str) -> None:
    assert "Traceback" not in out + err, out + err
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1, f"exit {code}, stderr:\n{err}"
    assert mistake.says in lines[0], lines[0]


# One mistake per command (and the bare `podium`) as a real process; every one of them in this process,
# through the same entry point, which is quicker (each `podium` process imports a2a-sdk anew).
FIRST_OF_EACH = list({(x.args or ("",))[0]: x for x in reversed(MISTAKES)}.values())


@pytest.mark.parametrize("mistake", FIRST_OF_EACH, ids=[x.id for x in FIRST_OF_EACH])
def test_a_usage_mistake_is_one_line_and_exit_2_in_a_real_process(mistake: Mistake) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", *mistake.args],
        env=_env(mistake.env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    _check(mistake, done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("mistake", MISTAKES, ids=[x.id for x in MISTAKES])
def test_a_usage_mistake_is_one_line_and_exit_2(mistake: Mistake, monkeypatch, capsys) -> None:
    for name in list(os.environ):
        if name.startswith(("PODIUM_", "REDIS_URL", "OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", raising=False)  # main() sets it
    for name, value in mistake.env.items():
        monkeypatch.setenv(name, value)
    try:
        code: int | str | None = cli.main(list(mistake.args))
    except SystemExit as exc:  # argparse's way out
        code = exc.code
    captured = capsys.readouterr()
    _check(mistake, code, captured.out, captured.err)


def test_every_command_has_usage_mistakes_here() -> None:
    covered = {x.args[0] for x in MISTAKES if x.args and x.args[0] in cli.COMMANDS}
    assert covered == set(cli.COMMANDS), f"add cases for: {sorted(set(cli.COMMANDS) - covered)}"


def test_a_command_whose_module_is_missing_says_so_in_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setitem(cli.COMMANDS, "ghost", ("podium.agents.cli.ghost", "a command not in this build"))
    assert cli.main(["ghost", "--any", "thing"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["podium: 'ghost' is not available in this build"]
