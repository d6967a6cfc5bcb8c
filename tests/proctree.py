"""Which processes descend from a pid, and which of them still run, read from Linux's /proc."""

from __future__ import annotations

from pathlib import Path

import pytest

PROC = Path("/proc")

needs_proc = pytest.mark.skipif(not (PROC / "self" / "stat").exists(), reason="needs Linux /proc")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of ``pid``, or None when it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def descendants(root: int) -> dict[int, str]:
    """Every process below ``root`` (children, grandchildren, ...), with its command line."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[1]
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return {pid: _cmdline(pid) for pid in found}


def _cmdline(pid: int) -> str:
    try:
        return (
            (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        )
    except OSError:
        return "?"


def running(pids: dict[int, str]) -> dict[int, str]:
    """Those of ``pids`` that still run (zombies waiting to be reaped count as gone)."""
    alive = {}
    for pid, cmd in pids.items():
        stat = _stat(pid)
        if stat is not None and stat[0] != "Z" and _cmdline(pid) == cmd:  # same pid, same process
            alive[pid] = cmd
    return alive


def with_env(name: str, value: str) -> dict[int, str]:
    """Every process whose environment holds ``name=value`` (readable by us), with its command line: a
    test's processes, however deep and whoever adopted them, found by the unique namespace they carry."""
    wanted = f"{name}={value}".encode()
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if wanted in environ.split(b"\0"):
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] != "Z":
                found[int(entry.name)] = _cmdline(int(entry.name))
    return found
