"""Podium's card registry: Agent Cards, their store in Redis with TTL heartbeats, discovery, signing and HTTP.

The agent runtime calls :func:`load_card` to build its card and ``Registry.announce`` to stay registered while it
runs; the orchestrator discovers specialists with ``Registry.find``; ``podium registry`` serves
:func:`create_app` to outside systems. The store, discovery, signing (PyJWT, cryptography) and HTTP service
are imported on first use, so a process that only loads its card (an agent that does not register) never
loads them.
"""

import importlib as _importlib
import typing as _typing

from podium.registry.cards import card_from_json, card_to_dict, cards_dir, load_card, validate_card
from podium.registry.entries import AgentEntry, Instance, Match, new_instance_id
from podium.registry.errors import (
    AgentNotFound,
    CardError,
    FetchError,
    InvalidSignature,
    NameTaken,
    NotAnAgentCard,
    RegistryError,
    SignatureError,
    SigningKeyError,
    UnknownKey,
    UnsignedCard,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
    UrlNotAllowed,
)

if _typing.TYPE_CHECKING:
    from podium.registry.fetch import fetch_card
    from podium.registry.http import Settings, create_app
    from podium.registry.signing import CardSigner, KeyPair, TrustedKeys, generate_keypair
    from podium.registry.store import Registry

_LAZY = {
    "fetch_card": "podium.registry.fetch",
    "Settings": "podium.registry.http",
    "create_app": "podium.registry.http",
    "CardSigner": "podium.registry.signing",
    "KeyPair": "podium.registry.signing",
    "TrustedKeys": "podium.registry.signing",
    "generate_keypair": "podium.registry.signing",
    "Registry": "podium.registry.store",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = getattr(_importlib.import_module(module), name)
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AgentEntry",
    "AgentNotFound",
    "CardError",
    "CardSigner",
    "FetchError",
    "Instance",
    "InvalidSignature",
    "KeyPair",
    "Match",
    "NameTaken",
    "NotAnAgentCard",
    "Registry",
    "RegistryError",
    "Settings",
    "SignatureError",
    "SigningKeyError",
    "TrustedKeys",
    "UnknownKey",
    "UnsignedCard",
    "UpstreamTimeout",
    "UpstreamTooLarge",
    "UpstreamUnreachable",
    "UrlNotAllowed",
    "card_from_json",
    "card_to_dict",
    "cards_dir",
    "create_app",
    "fetch_card",
    "generate_keypair",
    "load_card",
    "new_instance_id",
    "validate_card",
]
