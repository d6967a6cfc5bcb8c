"""Podium's card registry: Agent Cards, their store in Redis with TTL heartbeats, discovery, signing and HTTP.

The agent runtime calls :func:`load_card` to build its card and ``Registry.announce`` to stay registered while it
runs; the orchestrator discovers specialists with ``Registry.find``; ``podium registry`` serves
:func:`create_app` to outside systems.
"""

from registry.cards import card_from_json, card_to_dict, cards_dir, load_card, validate_card
from registry.entries import AgentEntry, Instance, Match, new_instance_id
from registry.errors import (
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
from registry.fetch import fetch_card
from registry.http import Settings, create_app
from registry.signing import CardSigner, KeyPair, TrustedKeys, generate_keypair
from registry.store import Registry

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
