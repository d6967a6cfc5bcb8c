"""Whose task is it: the owner a task store records for a request, and who may see every task.

A task's owner is the caller that created it, as the binding authenticated it: over HTTP the client its
bearer credential names (``agents.host.auth``), over the bus the calling process's client id prefix (its
agent's name, which the Redis ACL ties to that agent's user through its reply streams). A request whose
credential carries the ``admin`` scope sees every task; the owner stays the creator's.
"""

from __future__ import annotations

from a2a.server.context import ServerCallContext

ASK = "ask"  # send tasks and act on one's own
ADMIN = "admin"  # act on every task (the console, operators)
SCOPES = (ASK, ADMIN)


def owner_of(context: ServerCallContext) -> str:
    """The owner recorded for (and required of) a task touched with ``context``: the caller's name."""
    return context.user.user_name


def is_admin(context: ServerCallContext) -> bool:
    """True when ``context``'s caller may act on every task."""
    return ADMIN in getattr(context.state.get("auth"), "scopes", ())


def system_context() -> ServerCallContext:
    """A context for an agent acting on its own tasks on nobody's behalf (resuming a run)."""
    from starlette.authentication import AuthCredentials

    return ServerCallContext(state={"auth": AuthCredentials([ADMIN])})
