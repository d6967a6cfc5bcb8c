"""What an agent's executor may offer the host beyond ``execute`` and ``cancel``.

An executor is an a2a-sdk ``AgentExecutor``. The host (``podium agent NAME``, ``podium up``) also looks for
three optional hooks, each a small ``Protocol`` an executor implements by defining the method:

- :class:`ProvidesRoutes`: extra HTTP routes served beside the agent's A2A routes (the orchestrator's
  ``/trace/{id}``); they sit behind the same bearer-token check.
- :class:`RunsInBackground`: work that runs for as long as the agent does, given the agent's request
  handler (the orchestrator's loop that resumes interrupted runs). Cancelled at shutdown.
- :class:`Closable`: resources to release when the agent stops (after in-flight work finished or was
  handed back), within the grace period.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from starlette.routing import BaseRoute


@runtime_checkable
class ProvidesRoutes(Protocol):
    """An executor with HTTP routes of its own, served beside its A2A routes behind the same token."""

    def routes(self) -> list[BaseRoute]:
        """Starlette routes to mount beside the A2A routes."""
        ...


@runtime_checkable
class RunsInBackground(Protocol):
    """An executor with background work that runs as long as the agent does."""

    async def serve(self, handler: Any) -> None:
        """Run until cancelled; ``handler`` is the agent's a2a ``RequestHandler``."""
        ...


@runtime_checkable
class Closable(Protocol):
    """An executor holding resources to release when the agent stops."""

    async def aclose(self) -> None:
        """Release what the executor holds; called once, at shutdown."""
        ...
