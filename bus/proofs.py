"""Proof that a mutating bus request comes from the caller its reply stream names.

Over the bus a caller is the client its reply stream names (``{ns}:reply:{NAME.<id>}``, ``bus.owners``): the
Redis ACL lets only user NAME read that stream, but every agent's user may *publish* a request naming it.
For reads that is harmless (the answer goes where the sender cannot read it); a request that changes a task
— ``CancelTask``, creating or deleting a push-notification config — would still take effect. So a caller
sending one first writes a short-lived proof key, ``{ns}:proof:{<its client id>}:<envelope id>``, holding
a digest of the request; ``podium acl`` gives each user write access to the proofs of its own client ids
only (``{ns}:proof:{NAME.*}:*``, the same prefix as its reply streams) and read access to all. The agent
reads the proof before acting and answers a request without one ``TaskNotFound``, exactly as it answers
another caller's task: a forger can neither write the proof nor learn whether the task exists.

A client id naming no client (no ``NAME.`` prefix, which acts on every task) has proofs only the admin user
can write. A proof is bound to the request's method and payload and expires after ``PROOF_TTL_MS``; one
that is replayed (by a user that read it) can only repeat that same request, which its caller sent anyway.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from podium.bus.envelope import Envelope
from podium.bus.keys import Keys
from podium.bus.text import text

MUTATING = frozenset({"CancelTask", "CreateTaskPushNotificationConfig", "DeleteTaskPushNotificationConfig"})
PROOF_TTL_MS = 120_000  # outlives a request's wait in a busy inbox; a proof is written per request


def digest(env: Envelope) -> str:
    """What a proof holds: the request's method and payload, hashed."""
    body = json.dumps([env.method, env.payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def client_of(keys: Keys, reply_to: str) -> str:
    """The client id of the reply stream ``reply_to`` ('' when it is not one of ``keys``' reply streams)."""
    prefix = keys.reply("")[:-1]  # "{ns}:reply:{"
    if not reply_to.startswith(prefix) or not reply_to.endswith("}"):
        return ""
    return reply_to[len(prefix) : -1]


async def prove(redis: Any, keys: Keys, client: str, env: Envelope) -> None:
    """Write the proof of ``env`` for ``client`` (before publishing it). Raises ``redis.RedisError``."""
    await redis.set(keys.proof(client, env.id), digest(env), px=PROOF_TTL_MS)


async def proven(redis: Any, keys: Keys, env: Envelope) -> bool:
    """Whether ``env`` carries the proof its reply stream's client wrote. Raises ``redis.RedisError``."""
    client = client_of(keys, env.reply_to or "")
    if not client:
        return False
    raw = await redis.get(keys.proof(client, env.id))
    return raw is not None and text(raw) == digest(env)
