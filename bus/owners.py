"""Whose task is it: the owner a task store records for a request, and who may see every task.

A task's owner is the caller that created it, as the binding authenticated it: over HTTP the client its
bearer credential names (``agents.host.auth``), over the bus the calling process's client id prefix (its
agent's name, which the Redis ACL ties to that agent's user through its reply streams). A request whose
credential carries the ``admin`` scope sees every task, as does a caller nobody authenticated (see
:func:`is_admin`); the owner stays the creator's.
"""

from __future__ import annotations

from a2a.auth.user import User
from a2a.server.context import ServerCallContext

ASK = "ask"  # send tasks and act on one's own
ADMIN = "admin"  # act on every task (the console, operators)
SCOPES = (ASK, ADMIN)
BUS_PREFIX = "bus:"  # owners of tasks created over the bus (see bus_owner)


def owner_of(context: ServerCallContext) -> str:
    """The owner recorded for (and required of) a task touched with ``context``: the caller's name."""
    return context.user.user_name


def is_admin(context: ServerCallContext) -> bool:
    """True when ``context``'s caller may act on every task: a client with the ``admin`` scope, or a caller
    nobody authenticated (an agent that requires no credentials, which then listens on loopback only; a bus
    caller whose reply stream names no client, which the ACL gives only to the admin user; the agent itself)."""
    return ADMIN in getattr(context.state.get("auth"), "scopes", ()) or not context.user.is_authenticated


def system_context() -> ServerCallContext:
    """A context for an agent acting on its own tasks on nobody's behalf (resuming a run)."""
    from starlette.authentication import AuthCredentials

    return ServerCallContext(state={"auth": AuthCredentials([ADMIN])})


class BusCaller(User):
    """The caller of a request that came over the bus, named by its reply stream (see :func:`bus_owner`)."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def is_authenticated(self) -> bool:
        return bool(self._name)

    @property
    def user_name(self) -> str:
        return self._name


def bus_owner(reply_to: str) -> str:
    """The owner of tasks a bus request creates: ``bus:`` and the part before the first ``.`` of its reply
    stream's client id (``{ns}:reply:{orchestrator.3f2c…}`` -> ``bus:orchestrator``), '' for an id without
    one. The prefix keeps bus callers apart from HTTP clients (whose names hold no ``:``), so a client named
    like an agent never sees the tasks that agent delegated.

    Not the envelope's ``sender``, which anyone can write: a reply stream is readable only by the Redis user
    its ACL gives ``{ns}:reply:{NAME.*}`` to, so a request naming another caller's stream sends the answer
    where its sender cannot read it."""
    client = reply_to.rpartition(":reply:")[2].strip("{}")
    name, dot, _ = client.partition(".")
    return f"{BUS_PREFIX}{name}" if dot and name else ""
