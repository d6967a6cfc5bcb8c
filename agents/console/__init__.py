"""The live web console: agents, queues, tasks, plans, traces, dead letters and an Ask box, in a
browser, fed from Redis over Server-Sent Events (``podium console``; ``podium up`` starts one)."""

from podium.agents.console.app import DEFAULT_PORT, TOKEN_ENV, Settings, create_app
from podium.agents.console.launch import UpConsole, for_up, server

__all__ = ["DEFAULT_PORT", "TOKEN_ENV", "Settings", "UpConsole", "create_app", "for_up", "server"]
