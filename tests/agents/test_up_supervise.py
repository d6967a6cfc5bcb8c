"""`podium up` with Redis supervises its children: replicas, a SIGKILLed agent restarted and the system
still answering, and nothing left behind after SIGTERM (real redis-server, real processes, the `podium`
CLI as a user types it). The restart policy itself (backoff, giving up with the last lines shown) is
checked on the supervisor with real short-lived processes, which crash on cue."""

from __future__ import annotations

import os
import re
import signal
import sys
import time

import pytest

from podium.agents.up.supervisor import LOG_LINES, ChildSpec, RestartPolicy, Supervisor
from tests.proctree import descendants, needs_proc, running, with_env
from tests.support import REDIS_SERVER, Proc, wait_until

pytestmark = [needs_proc, pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed")]

READY = "Ctrl-C stops everything."
URL_LINE = re.compile(r"^  (\S+)\s+(http://\S+)$", re.M)


def _agents(pid: int, name: str) -> dict[int, str]:
    return {p: cmd for p, cmd in descendants(pid).items() if f"podium.agents.cli agent {name} " in cmd}


def test_replicas_a_killed_agent_comes_back_and_sigterm_leaves_nothing(
    redis_url: str, namespace: str
) -> None:
    env = {"REDIS_URL": redis_url, "PODIUM_NAMESPACE": namespace, "ANTHROPIC_API_KEY": ""}
    args = ("--any-port", "--agents", "orchestrator,analyst", "--replicas", "analyst=2")
    up = Proc.podium("up", *args, env=env)
    try:
        wait_until(lambda: READY in up.output() or not up.alive(), timeout=120, what="podium up to be ready")
        out = up.output()
        assert up.alive(), out
        assert f"2 agents (processes on {redis_url}, namespace '{namespace}')" in out
        listed = URL_LINE.findall(out)
        assert [name for name, _ in listed] == ["orchestrator", "registry", "analyst"], out
        orchestrator = listed[0][1]
        assert f'podium ask --url {orchestrator} "' in out
        assert "alive in the registry: orchestrator, analyst (2 instances)" in out, out
        analysts = _agents(up.proc.pid, "analyst")
        assert len(analysts) == 2, analysts
        seen = descendants(up.proc.pid)

        victim = max(analysts)
        os.kill(victim, signal.SIGKILL)
        # Asked at once: the other replica answers while the killed one is being restarted.
        ask = Proc.podium("ask", "--url", orchestrator, "What is 15% of 240?", env=env)
        try:
            wait_until(
                lambda: re.search(r"analyst(#2)? is back", up.output()) is not None,
                timeout=90,
                what="the analyst to be restarted",
            )
            assert ask.proc.wait(90) == 0, ask.output()
            assert re.search(r"15% of 240 (=|is) 36\b", ask.output()), ask.output()
        finally:
            ask.close()
        out = up.output()
        assert re.search(r"analyst(#2)? exited \(killed by SIGKILL\); restarting it in 0\.5s", out), out
        assert re.search(r"restarted analyst(#2)? \(pid \d+, restart 1\)", out), out
        now = _agents(up.proc.pid, "analyst")
        assert len(now) == 2 and victim not in now, now
        seen.update(descendants(up.proc.pid))

        up.signal(signal.SIGTERM)
        assert up.proc.wait(60) == 0, up.output()
        wait_until(lambda: not running(seen), timeout=60, what=f"these to exit: {running(seen)}")
        wait_until(lambda: not with_env("PODIUM_NAMESPACE", namespace), timeout=60, what="stragglers to exit")
        assert "Traceback" not in up.output()
    finally:
        up.close()


CRASHER = """
import sys
for i in range(1, 51):
    print(f"{sys.argv[1]} line {i}")
sys.exit(int(sys.argv[2]))
"""
SERVER = """
import sys, time
print("podium agent steady ready: A2A http://127.0.0.1:1  bus redis-streams://x/steady", flush=True)
time.sleep(600)
"""


def test_a_child_that_keeps_crashing_is_given_up_on_with_its_last_lines() -> None:
    said: list[str] = []
    relayed: list[str] = []
    policy = RestartPolicy(max_crashes=3, window_s=60, first_delay_s=0.05, max_delay_s=0.1)
    sup = Supervisor(
        [
            ChildSpec("crasher", ["-c", CRASHER, "crasher", "1"]),
            ChildSpec("mistaken", ["-c", CRASHER, "mistaken", "2"]),
            ChildSpec("steady", ["-c", SERVER]),
        ],
        env=dict(os.environ),
        policy=policy,
        stopping=lambda: False,
        say=said.append,
        relay=relayed.append,
        command=(sys.executable,),
    )
    try:
        sup.start_all()
        deadline = time.monotonic() + 60
        while not all(sup.children[n].gave_up for n in ("crasher", "mistaken")):
            assert time.monotonic() < deadline, said
            sup.step(timeout=0.05)
        steady = sup.children["steady"]
        assert steady.ready and steady.running and steady.url == "http://127.0.0.1:1"
        assert steady.restarts == 0
        crasher = sup.children["crasher"]
        assert crasher.restarts == 2 and crasher.proc is None
        restarts = [s for s in said if s.startswith("podium up: crasher exited (exit 1); restarting it in")]
        assert [s.rsplit(" ", 1)[1] for s in restarts] == ["0.05s", "0.1s"]  # doubling, capped
        gave_up = said.index(
            "podium up: crasher exited (exit 1); giving up on it: 3 exits within 60s. Its last lines:"
        )
        shown = [s for s in said[gave_up + 1 :] if s.startswith("  crasher | ")][:LOG_LINES]
        assert shown == [f"  crasher | crasher line {i}" for i in range(51 - LOG_LINES, 51)]
        # exit status 2 is a configuration mistake: given up on at once, never restarted
        assert sup.children["mistaken"].restarts == 0
        assert any(
            "mistaken exited (exit 2); giving up on it: a usage or configuration mistake" in s for s in said
        )
        assert "crasher | crasher line 1" in relayed and "steady" not in " ".join(relayed)
        assert [c.name for c in sup.active] == ["steady"]
    finally:
        sup.stop(grace=5, interrupted=lambda: False)
    assert steady.proc is not None and steady.proc.poll() is not None
