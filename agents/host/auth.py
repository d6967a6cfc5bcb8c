"""Who is calling an agent's A2A HTTP endpoints: a bearer credential checked against what the agent accepts.

Three sources, any of them, in every mode (``RuntimeConfig`` holds them, so ``podium up`` embedded, its
processes, containers and Kubernetes read the same settings):

- ``PODIUM_A2A_TOKEN``: one shared token, the client named ``default`` (scope ``admin``, so today's single-token
  deployments and the console keep seeing every task);
- ``PODIUM_CLIENTS_FILE``: per-client tokens, kept only as hashes, each with its scopes (``podium clients``);
- ``PODIUM_OIDC_ISSUER`` + ``PODIUM_OIDC_AUDIENCE``: JWTs signed by the issuer's keys, ``sub`` naming the client.

An authenticated caller becomes Starlette's ``scope["user"]`` / ``scope["auth"]``, which a2a-sdk's context
builder turns into ``ServerCallContext.user`` and ``state["auth"]``: the task store records that name as a task's
owner and shows a caller only its own tasks (all of them to ``admin``; see ``podium.bus.owners``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from podium.bus.owners import ADMIN, ASK

if TYPE_CHECKING:
    from podium.agents.host.clients import ClientsFile
    from podium.agents.host.oidc import OidcVerifier
    from podium.agents.host.settings import RuntimeConfig

DEFAULT_CLIENT = "default"


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its name (a task's owner) and scopes (``ask``, ``admin``)."""

    name: str
    scopes: frozenset[str] = field(default_factory=lambda: frozenset({ASK}))

    @property
    def admin(self) -> bool:
        return ADMIN in self.scopes


@dataclass
class Credentials:
    """What an agent accepts as a caller's bearer credential. Empty: nothing is required."""

    token: str | None = None
    clients: ClientsFile | None = None
    oidc: OidcVerifier | None = None

    @property
    def required(self) -> bool:
        return bool(self.token) or self.clients is not None or self.oidc is not None

    @property
    def schemes(self) -> list[str]:
        """The kinds of credential accepted, for the card and the logs (no secrets)."""
        return [
            kind
            for kind, on in (
                ("token", bool(self.token) or self.clients is not None),
                ("oidc", self.oidc is not None),
            )
            if on
        ]

    async def authenticate(self, bearer: str) -> Caller | None:
        """The caller ``bearer`` (the value after ``Bearer``) proves to be, or None."""
        if not bearer:
            return None
        if self.token and hmac.compare_digest(bearer.encode(), self.token.encode()):
            return Caller(DEFAULT_CLIENT, frozenset({ASK, ADMIN}))
        if self.clients is not None:
            caller = self.clients.authenticate(bearer)
            if caller is not None:
                return caller
        if self.oidc is not None and bearer.count(".") == 2:  # a JWT's three parts
            return await self.oidc.authenticate(bearer)
        return None

    @classmethod
    def from_config(cls, cfg: RuntimeConfig) -> Credentials:
        """The credentials ``cfg`` configures. Raises ``ConfigError`` naming a bad clients file."""
        clients = oidc = None
        if cfg.clients_file:
            from podium.agents.host.clients import ClientsFile

            clients = ClientsFile(cfg.clients_file)
            clients.check()
        if cfg.oidc_issuer and cfg.oidc_audience:
            from podium.agents.host.oidc import OidcVerifier

            oidc = OidcVerifier(cfg.oidc_issuer, cfg.oidc_audience)
        return cls(token=cfg.token, clients=clients, oidc=oidc)
