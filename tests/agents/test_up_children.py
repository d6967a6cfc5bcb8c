"""`podium up` with REDIS_URL (one process per agent) never leaves a process behind — registry, agents and
the stdio MCP servers the agents spawn — whichever way it ends: SIGTERM, SIGINT, its own crash, SIGKILL,
Redis killed under it (a child dying is restarted: tests/agents/test_up_supervise.py). Without Redis it says what it waits for, gives up when told to, and
obeys SIGTERM meanwhile. Real processes, real redis-server, the process tree read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.proctree import descendants, needs_proc, running, with_env
from tests.support import CI, REDIS_SERVER, ROOT, Proc, RedisServer, free_port, wait_until

pytestmark = [
    needs_proc,
    pytest.mark.skipif(REDIS_SERVER is None and not CI, reason="redis-server not installed"),
]

READY = "Ctrl-C stops everything."
# Podium mounts its own tool servers in process; these configs mount calc and docs over stdio instead.
STDIO_CONFIG = str(ROOT / "tests" / "agents" / "stdio_config")


def _env(redis_url: str, namespace: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "PODIUM_NAMESPACE": namespace, "PODIUM_AGENT_CONFIG_DIR": STDIO_CONFIG}


def _tree(pid: int) -> dict[int, str]:
    """podium up's processes once they all run: the registry, the analyst and the calc server it spawned."""
    tree: dict[int, str] = {}

    def complete() -> bool:
        tree.update(descendants(pid))
        cmds = " | ".join(tree.values())
        return all(
            part in cmds
            for part in ("podium.agents.cli registry", "podium.agents.cli agent analyst", "mcp calc")
        )

    wait_until(complete, timeout=60, what="podium up's registry, agent and MCP server processes")
    return tree


def _all_gone(tree: dict[int, str], namespace: str | None = None) -> None:
    wait_until(lambda: not running(tree), timeout=60, what=f"these to exit: {running(tree)}")
    if namespace:  # and nothing else carrying the test's namespace, however it was spawned
        wait_until(lambda: not with_env("PODIUM_NAMESPACE", namespace), timeout=60, what="stragglers to exit")


def _up(redis_url: str, namespace: str) -> tuple[Proc, dict[int, str]]:
    proc = Proc.podium("up", "--any-port", "--agents", "analyst", env=_env(redis_url, namespace))

    def ready() -> bool:
        if not proc.alive():
            raise AssertionError(f"podium up exited:\n{proc.output()}")
        return READY in proc.output()

    wait_until(ready, timeout=120, what="podium up to print its URLs")
    return proc, _tree(proc.proc.pid)


def test_sigterm_while_podium_up_is_starting_leaves_nothing(redis_url: str, namespace: str) -> None:
    proc = Proc.podium("up", "--any-port", "--agents", "analyst", env=_env(redis_url, namespace))
    try:
        wait_until(
            lambda: any("agent analyst" in cmd for cmd in with_env("PODIUM_NAMESPACE", namespace).values()),
            timeout=60,
            what="podium up to start the analyst",
        )
        assert READY not in proc.output()  # the agent takes seconds to be ready: this is start-up
        proc.signal(signal.SIGTERM)
        assert proc.proc.wait(60) == 0, proc.output()
        # Found by the namespace in their environment: whatever was spawned, however deep, whoever adopted it.
        wait_until(
            lambda: not with_env("PODIUM_NAMESPACE", namespace), timeout=60, what="every process to exit"
        )
    finally:
        proc.close()


@pytest.mark.parametrize(
    ("how", "code"),
    [(signal.SIGTERM, 0), (signal.SIGINT, 0), (signal.SIGKILL, -signal.SIGKILL)],
    ids=["SIGTERM", "SIGINT", "SIGKILL"],
)
def test_no_child_outlives_podium_up(redis_url: str, namespace: str, how: signal.Signals, code: int) -> None:
    proc, tree = _up(redis_url, namespace)
    try:
        proc.signal(how)
        assert proc.proc.wait(60) == code, proc.output()
        _all_gone(tree, namespace)
        if how != signal.SIGKILL:
            assert "Traceback" not in proc.output()
    finally:
        proc.close()


def test_podium_up_crashing_still_stops_its_children(redis_url: str, namespace: str) -> None:
    """Its stdout closed under it, `podium up` fails with BrokenPipeError when it next prints: a real
    crash of the supervisor, which must still take its children down."""
    up = subprocess.Popen(
        [sys.executable, "-m", "podium.agents.cli", "up", "--any-port", "--agents", "analyst"],
        cwd=ROOT,
        env={**os.environ, **_env(redis_url, namespace), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert up.stdout is not None
        for line in up.stdout:
            if READY.encode() in line:
                break
        tree = _tree(up.pid)
        up.stdout.close()
        up.send_signal(signal.SIGTERM)  # it says "stopping" on stdout, which is gone
        assert up.wait(60) not in (0, None)
        _all_gone(tree, namespace)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        if up.stderr is not None:
            up.stderr.close()


def test_redis_killed_under_podium_up_then_sigterm(namespace: str) -> None:
    server = RedisServer().start()
    try:
        proc, tree = _up(server.url, namespace)
        try:
            server.kill()
            proc.signal(signal.SIGTERM)
            assert proc.proc.wait(90) == 0, proc.output()
            _all_gone(tree, namespace)
        finally:
            proc.close()
    finally:
        server.close()


def test_podium_up_waits_for_redis_then_gives_up_having_started_nothing(namespace: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    proc = Proc.podium("up", "--any-port", "--startup-timeout", "2", env=_env(url, namespace))
    try:
        wait_until(lambda: "waiting for Redis at" in proc.output() or not proc.alive(), timeout=60)
        assert proc.alive(), proc.output()
        assert not descendants(proc.proc.pid)  # no child before Redis answers
        assert proc.proc.wait(60) == 1
        out = proc.output()
        assert f"waiting for Redis at {url}" in out and "did not answer within 2s" in out
        assert "--startup-timeout" in out and "Traceback" not in out
    finally:
        proc.close()


def test_podium_up_obeys_sigterm_while_waiting_for_redis(namespace: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    proc = Proc.podium("up", "--any-port", "--startup-timeout", "0", env=_env(url, namespace))
    try:
        wait_until(lambda: "waiting for Redis at" in proc.output() or not proc.alive(), timeout=60)
        proc.signal(signal.SIGTERM)
        assert proc.proc.wait(30) == 0, proc.output()
        assert "Traceback" not in proc.output()
    finally:
        proc.close()


def test_an_agents_stdio_mcp_server_dies_with_it(redis_url: str, namespace: str) -> None:
    agent = Proc.podium(
        "agent",
        "analyst",
        "--redis-url",
        redis_url,
        "--namespace",
        namespace,
        env={"PODIUM_LOG_LEVEL": "INFO", "PODIUM_AGENT_CONFIG_DIR": STDIO_CONFIG},
    )
    try:
        wait_until(lambda: " ready: A2A " in agent.output() or not agent.alive(), timeout=90)
        servers = {pid: cmd for pid, cmd in descendants(agent.proc.pid).items() if "mcp calc" in cmd}
        assert servers, agent.output()
        agent.kill()  # SIGKILL: no clean-up of its own
        _all_gone(servers)
    finally:
        agent.close()


def test_a_child_whose_parent_is_already_gone_does_not_start() -> None:
    """PODIUM_PARENT_PID names a process that is not (any more) this one's parent: it must not start."""
    done = subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", "agents"],
        cwd=ROOT,
        env={**os.environ, "PODIUM_PARENT_PID": "1", "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "has already exited" in done.stderr, done.stderr
