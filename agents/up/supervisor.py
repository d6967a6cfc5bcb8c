"""The process supervisor behind ``podium up`` with Redis: starts child processes, restarts the ones that
crash, and gives up on the ones that keep crashing.

Each child's stdout and stderr come through one pipe, read line by line: the line an agent prints when it
is ready gives its URL, every other line is passed on to our stderr prefixed with the child's name, and the
last :data:`LOG_LINES` lines stay in a ring buffer, shown when the child is given up on. A child that exits
while we are not stopping is restarted after a backoff that doubles with each recent crash; more than
``max_crashes`` exits within ``window_s`` seconds, or exit status 2 (a usage or configuration mistake,
which no restart fixes), and it is given up on.

Everything runs in the calling thread (a selector over the pipes, polled exit codes), so SIGTERM/SIGINT
only set a flag the loop reads; :meth:`Supervisor.stop` ends every child and what it left in its process
group.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

LOG_LINES = 40  # per child, shown when it is given up on
READY_MARK = " ready: A2A "  # the line `podium agent` prints when it serves (agents.runtime.print_ready)


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a crashed child, and when to stop trying."""

    max_crashes: int = 5  # exits within ``window_s`` before the child is given up on
    window_s: float = 60.0
    first_delay_s: float = 0.5
    max_delay_s: float = 15.0

    def delay(self, recent_crashes: int) -> float:
        return float(min(self.max_delay_s, self.first_delay_s * 2 ** max(0, recent_crashes - 1)))


@dataclass(frozen=True)
class ChildSpec:
    """One process to keep running: ``podium ARGS`` with ``env`` over the common environment.

    It is ready when it prints the agent ready line (``probe`` is None) or, for services that print
    none (the registry, a console), once ``probe`` (host, port) accepts a TCP connection; ``url`` is
    then what ``podium up`` prints for it.
    """

    name: str  # unique label: "analyst", "analyst#2", "registry"
    args: list[str]
    env: Mapping[str, str] = field(default_factory=dict)
    probe: tuple[str, int] | None = None
    url: str | None = None
    optional: bool = False  # given up on, it is left out and the rest keeps running (installed agents)


@dataclass
class Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes] | None = None
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    partial: bytes = b""
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None
    restarts: int = 0
    ready: bool = False
    gave_up: bool = False
    url: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Runs ``children`` (``command ARGS``, by default ``python -m podium.agents.cli ARGS``) under ``policy``; see the module docstring.

    ``stopping`` is polled: return True to stop (e.g. a signal arrived). ``say`` reports events (stdout),
    ``relay`` passes on children's lines (stderr)."""

    def __init__(
        self,
        specs: list[ChildSpec],
        env: Mapping[str, str],
        policy: RestartPolicy,
        stopping: Callable[[], bool],
        say: Callable[[str], None],
        relay: Callable[[str], None],
        command: tuple[str, ...] = (sys.executable, "-m", "podium.agents.cli"),
    ) -> None:
        self.children = {spec.name: Child(spec) for spec in specs}
        self.env = dict(env)
        self.policy = policy
        self.stopping = stopping
        self.say = say
        self.relay = relay
        self.command = list(command)
        self.selector = selectors.DefaultSelector()

    # -- processes ------------------------------------------------------------------------------

    def start_all(self) -> None:
        for child in self.children.values():
            self._spawn(child)

    def _spawn(self, child: Child) -> None:
        # A process group of its own: Ctrl-C reaches only podium up, which stops each child once, in
        # order; and the whole group can be swept when the child is gone.
        child.proc = subprocess.Popen(
            [*self.command, *child.spec.args],
            env={**self.env, **child.spec.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        child.ready, child.restart_at, child.partial = False, None, b""
        assert child.proc.stdout is not None
        os.set_blocking(child.proc.stdout.fileno(), False)
        self.selector.register(child.proc.stdout, selectors.EVENT_READ, child)

    def step(self, timeout: float = 0.2) -> list[Child]:
        """Read output, notice exits, restart what is due; returns the children that became ready."""
        became_ready: list[Child] = []
        for key, _ in self.selector.select(timeout=timeout):
            child = key.data
            if self._read(child):
                became_ready.append(child)
        now = time.monotonic()
        for child in self.children.values():
            if child.proc is not None and child.proc.poll() is not None and child.restart_at is None:
                if self.stopping():
                    continue
                self._exited(child, now)
            elif child.restart_at is not None and now >= child.restart_at and not self.stopping():
                child.restarts += 1
                self._spawn(child)
                assert child.proc is not None
                self.say(
                    f"podium up: restarted {child.name} (pid {child.proc.pid}, restart {child.restarts})"
                )
            if child.running and not child.ready and child.spec.probe and _accepts(*child.spec.probe):
                child.ready, child.url = True, child.spec.url
                became_ready.append(child)
        return became_ready

    def _read(self, child: Child) -> bool:
        """Take what ``child`` wrote; True when it printed its ready line."""
        assert child.proc is not None and child.proc.stdout is not None
        ready = False
        while True:
            try:
                chunk = os.read(child.proc.stdout.fileno(), 65536)
            except BlockingIOError:
                return ready
            if not chunk:
                self._close_pipe(child)
                return ready
            *lines, child.partial = (child.partial + chunk).split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace").rstrip("\r")
                child.lines.append(line)
                if READY_MARK in line and not child.ready:
                    child.ready, child.url = True, line.split("A2A ", 1)[1].split()[0]
                    ready = True
                elif line.strip():
                    self.relay(f"{child.name} | {line}")

    def _close_pipe(self, child: Child) -> None:
        assert child.proc is not None and child.proc.stdout is not None
        if child.proc.stdout.closed:
            return
        try:
            self.selector.unregister(child.proc.stdout)
        except (KeyError, ValueError):
            pass
        child.proc.stdout.close()

    def _exited(self, child: Child, now: float) -> None:
        assert child.proc is not None
        code = child.proc.returncode
        _kill_group(child.proc.pid)  # what it spawned goes with it (stdio MCP servers)
        if child.proc.stdout is not None and not child.proc.stdout.closed:
            self._read(child)  # its last words
            if child.partial:
                child.lines.append(child.partial.decode(errors="replace"))
                child.partial = b""
            self._close_pipe(child)
        child.ready = False
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
        child.crashes.append(now)
        while child.crashes and now - child.crashes[0] > self.policy.window_s:
            child.crashes.popleft()
        recent = len(child.crashes)
        if code == 2 or recent >= self.policy.max_crashes:
            why = (
                "a usage or configuration mistake, which a restart cannot fix"
                if code == 2
                else f"{recent} exits within {self.policy.window_s:g}s"
            )
            self.give_up(child, f"{child.name} exited ({how}); giving up on it: {why}")
            return
        delay = self.policy.delay(recent)
        child.restart_at = now + delay
        self.say(f"podium up: {child.name} exited ({how}); restarting it in {delay:g}s")

    def give_up(self, child: Child, reason: str) -> None:
        child.gave_up, child.restart_at = True, None
        child.proc = child.proc if child.proc is not None and child.proc.poll() is None else None
        self.say(f"podium up: {reason}. Its last lines:" if child.lines else f"podium up: {reason}.")
        for line in child.lines:
            self.say(f"  {child.name} | {line}")
        if child.proc is not None:
            _stop([child.proc], grace=0, interrupted=lambda: True)
            child.proc = None

    @property
    def active(self) -> list[Child]:
        return [c for c in self.children.values() if not c.gave_up]

    # -- shutdown -------------------------------------------------------------------------------

    def stop(self, grace: float, interrupted: Callable[[], bool]) -> None:
        """SIGTERM each child still running, wait up to ``grace`` seconds (less once ``interrupted``),
        SIGKILL what is left, then sweep each child's process group for anything it left behind."""
        procs = [c.proc for c in self.children.values() if c.proc is not None]
        _stop(procs, grace, interrupted)
        for child in self.children.values():
            if child.proc is not None:
                self._close_pipe(child)
        self.selector.close()


def _stop(procs: list[subprocess.Popen[bytes]], grace: float, interrupted: Callable[[], bool]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(p.poll() is None for p in procs):
        if time.monotonic() > deadline or interrupted():
            break
        time.sleep(0.05)
    for proc in procs:
        if proc.poll() is None:
            _kill_group(proc.pid)
            proc.wait()
        _kill_group(proc.pid)  # the child is gone; nothing of its group may stay


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
