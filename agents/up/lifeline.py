"""Child processes that never outlive the ``podium`` process that started them.

A parent that spawns a ``podium`` child (``podium up`` its agents and registry, an agent its stdio MCP
servers) puts its pid in the child's environment with :func:`child_env`. The child calls
:func:`tie_to_parent` first thing: on Linux the kernel then sends it SIGTERM the moment its parent dies,
however the parent died (SIGKILL included; ``prctl(PR_SET_PDEATHSIG)``); elsewhere a watcher thread
notices within a second that it was re-parented. SIGTERM is what a polite parent would have sent, so the
child shuts down the usual graceful way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping

logger = logging.getLogger(__name__)

PARENT_ENV = "PODIUM_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_INTERVAL_S = 1.0


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus this process's pid as the parent a ``podium`` child must not outlive."""
    return {**env, PARENT_ENV: str(os.getpid())}


def tie_to_parent() -> bool:
    """If ``PODIUM_PARENT_PID`` is set, end this process (SIGTERM) when that parent dies.

    The variable is removed from this process's environment, so it cannot leak into grandchildren that
    were not spawned with :func:`child_env`. Returns False when the parent is already gone (the caller
    should exit), True otherwise.
    """
    raw = os.environ.pop(PARENT_ENV, None)
    if not raw:
        return True
    try:
        parent = int(raw)
    except ValueError:
        logger.warning("ignoring %s=%r: not a process id", PARENT_ENV, raw)
        return True
    if not _kernel_signals_parent_death():
        threading.Thread(target=_watch, args=(parent,), name="podium-parent-watch", daemon=True).start()
    # Checked after arming: a parent that died before that cannot signal us any more.
    return os.getppid() == parent


def _kernel_signals_parent_death() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    """Re-parenting (to init or a subreaper) is how a process sees its parent die without the kernel's help."""
    stop = threading.Event()
    while not stop.wait(WATCH_INTERVAL_S):
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            return
