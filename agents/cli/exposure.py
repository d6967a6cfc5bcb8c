"""The check every serving command makes before it binds: beyond loopback with no authentication configured,
refuse (one line, exit 2) unless ``--insecure``, which warns."""

from __future__ import annotations

import sys

from podium.agents.host.settings import exposure_problem


def refuse_exposure(command: str, host: str, unauthenticated: dict[str, str], insecure: bool) -> bool:
    """True when ``podium COMMAND`` must not start (the line is printed); ``unauthenticated`` maps each
    service without authentication to what would configure it."""
    problem = exposure_problem(host, unauthenticated)
    if problem is None:
        return False
    if not insecure:
        print(f"podium {command}: {problem}", file=sys.stderr)
        return True
    print(
        f"podium {command}: warning: --insecure: listening on {host} without authentication for "
        f"{', '.join(unauthenticated)}; anyone who can reach this host can call them",
        file=sys.stderr,
    )
    return False
