"""Errors raised by the registry: a small tree, each class with a default message.

``CardError`` and ``SignatureError`` are about what a card says; ``FetchError`` is about getting an outside
agent's card over HTTP. The HTTP service maps each class to a status code; nothing here knows about HTTP.

    RegistryError
    ├── CardError                 the card is not valid JSON, not an A2A 1.0 card, or fails a check
    ├── SigningKeyError           a key file cannot be read or is the wrong kind of key
    ├── SignatureError            the card's signature is missing or does not verify
    │   ├── UnsignedCard
    │   ├── UnknownKey
    │   └── InvalidSignature
    ├── AgentNotFound
    ├── NameTaken                 an outside agent would replace a Podium agent's card
    └── FetchError                an outside agent's card could not be fetched
        ├── UrlNotAllowed         bad scheme, or a private/loopback/link-local target
        ├── UpstreamUnreachable
        ├── UpstreamTimeout
        ├── UpstreamTooLarge
        └── NotAnAgentCard        the response is not JSON, or not a valid agent card
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base class for every registry error."""

    default = "registry error"
    code = "registry_error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default)

    @property
    def message(self) -> str:
        return str(self)


class CardError(RegistryError):
    """A card is malformed or fails validation; the message names the source and the field."""

    default = "invalid agent card"
    code = "invalid_card"


class SigningKeyError(RegistryError):
    """A signing or trusted key file is missing, unreadable, or not a supported key."""

    default = "unusable signing key"
    code = "bad_key"


class SignatureError(RegistryError):
    """A card's signature is missing or does not verify with a trusted key."""

    default = "card signature rejected"
    code = "bad_signature"


class UnsignedCard(SignatureError):
    default = "card is unsigned, and this registry only accepts cards signed by a trusted key"
    code = "unsigned_card"


class UnknownKey(SignatureError):
    default = "card is signed with a key id that is not trusted"
    code = "unknown_key"


class InvalidSignature(SignatureError):
    default = "card signature does not verify: the card changed after signing, or another key signed it"
    code = "invalid_signature"


class AgentNotFound(RegistryError):
    default = "no such agent"
    code = "not_found"


class NameTaken(RegistryError):
    default = "that name belongs to an agent on the bus; register the outside agent under another name"
    code = "name_taken"


class FetchError(RegistryError):
    """An outside agent's card could not be fetched from its URL."""

    default = "could not fetch the agent card"
    code = "fetch_failed"


class UrlNotAllowed(FetchError):
    default = "URL not allowed"
    code = "url_not_allowed"


class UpstreamUnreachable(FetchError):
    default = "agent card URL is unreachable"
    code = "upstream_unreachable"


class UpstreamTimeout(FetchError):
    default = "agent card URL did not answer in time"
    code = "upstream_timeout"


class UpstreamTooLarge(FetchError):
    default = "agent card response is too large"
    code = "too_large"


class NotAnAgentCard(FetchError):
    default = "response is not an agent card"
    code = "not_an_agent_card"
