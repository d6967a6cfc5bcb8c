"""Agent Cards: load them from ``cards/``, parse them from JSON, validate them, and turn them back into JSON.

A card file holds what an agent *is* (name, skills, modes, security schemes); where it runs is filled in at
run time (``interfaces``), so one file serves a laptop and a container. Every card goes through
``google.protobuf.json_format.ParseDict`` into ``a2a.types.AgentCard`` and then through semantic checks, and
every failure is a :class:`CardError` whose message names the source and the field, e.g.
``cards/x.json: skills[0].id: missing``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from a2a.types import AgentCard, AgentInterface, SecurityRequirement, StringList
from a2a.utils.constants import PROTOCOL_VERSION_CURRENT
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError

from podium.bus.keys import validate_name
from podium.registry.errors import CardError

if TYPE_CHECKING:
    from podium.registry.signing import CardSigner

logger = logging.getLogger(__name__)

MAX_CARD_BYTES = 256 * 1024
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9*][\w!#$&^.+*-]*/[\w!#$&^.+*-]+(\s*;.*)?$")
_HTTP_BINDINGS = {"JSONRPC", "HTTP+JSON"}


def cards_dir() -> Path:
    """Where named cards live: ``PODIUM_CARDS_DIR``, else the built-in cards packaged as ``podium.cards``."""
    env = os.environ.get("PODIUM_CARDS_DIR")
    if env:
        return Path(env)
    return Path(str(resources.files("podium.cards")))


def card_names(directory: Path | None = None) -> list[str]:
    """The names of every card file in ``directory`` (default :func:`cards_dir`)."""
    directory = directory or cards_dir()
    return sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []


def card_path(path_or_name: str | os.PathLike[str]) -> Path:
    """Resolve a card name (``echo``) or path (``cards/echo.json``) to a file path.

    Raises ``CardError`` when a name has no file, listing the names that do.
    """
    text = os.fspath(path_or_name)
    if text.endswith(".json") or os.sep in text or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise CardError(f"{text}: no such card file")
        return path
    directory = cards_dir()
    path = directory / f"{text}.json"
    if not path.is_file():
        known = ", ".join(card_names(directory)) or "none"
        raise CardError(f"no card named {text!r} in {directory} (available: {known}); set PODIUM_CARDS_DIR")
    return path


def load_card(
    path_or_name: str | os.PathLike[str],
    *,
    interfaces: Iterable[AgentInterface] | None = None,
    security_token_required: bool = False,
    oidc_issuer: str | None = None,
    signer: CardSigner | None = None,
    expect_name: str | None = None,
) -> AgentCard:
    """Load, validate and complete one card file.

    ``path_or_name`` is a path or a name looked up in :func:`cards_dir`. ``interfaces`` replace the card's
    ``supportedInterfaces`` (an empty ``protocol_version`` becomes the current A2A version).
    ``security_token_required`` adds a security requirement on the card's bearer scheme; ``oidc_issuer`` declares
    that issuer's OpenID Connect scheme as an alternative (:func:`require_oidc`). ``signer`` (default:
    ``CardSigner.from_env()``, i.e. ``PODIUM_SIGNING_KEY``) signs the completed card; without one, signatures in
    the file that no longer cover the completed card are dropped with a warning. ``expect_name`` is the
    name the card must have (default: the file's stem; an installed agent's file is ``card.json``).
    Raises ``CardError`` (bad file or card) or ``SigningKeyError`` (bad ``PODIUM_SIGNING_KEY``).
    """
    path = card_path(path_or_name)
    source = _display(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CardError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    card = card_from_json(raw, source=source, require_interfaces=False)
    if card.name != (expect_name or path.stem):
        what = f"the agent's name {expect_name!r}" if expect_name else f"the file name {path.stem!r}"
        raise CardError(f"{source}: name: {card.name!r} does not match {what}")
    before = card.SerializeToString(deterministic=True)
    if interfaces is not None:
        del card.supported_interfaces[:]
        for iface in interfaces:
            added = card.supported_interfaces.add()
            added.CopyFrom(iface)
            if not added.protocol_version:
                added.protocol_version = PROTOCOL_VERSION_CURRENT
        _check_interfaces(card, source)
    if security_token_required:
        require_bearer(card, source)
    if oidc_issuer:
        require_oidc(card, oidc_issuer)
    if signer is None and os.environ.get("PODIUM_SIGNING_KEY"):
        from podium.registry.signing import (
            CardSigner,
        )  # PyJWT and cryptography: only for a process that signs

        signer = CardSigner.from_env()
    changed = card.SerializeToString(deterministic=True) != before
    if signer is not None:
        card = signer.sign(card)
    elif changed and card.signatures:
        logger.warning(
            "%s: dropping its signatures: they do not cover the interfaces/security added at run time; "
            "set PODIUM_SIGNING_KEY to sign the completed card at start",
            source,
        )
        del card.signatures[:]
    return card


def require_bearer(card: AgentCard, source: str = "card") -> None:
    """Add a security requirement on the card's HTTP bearer scheme (idempotent).

    Raises ``CardError`` when the card declares no bearer scheme.
    """
    name = next(
        (
            key
            for key, scheme in card.security_schemes.items()
            if scheme.HasField("http_auth_security_scheme")
            and scheme.http_auth_security_scheme.scheme.lower() == "bearer"
        ),
        None,
    )
    if name is None:
        raise CardError(
            f"{source}: securitySchemes: a token is required but the card declares no bearer scheme"
        )
    if any(name in req.schemes for req in card.security_requirements):
        return
    card.security_requirements.append(SecurityRequirement(schemes={name: StringList()}))


def require_oidc(card: AgentCard, issuer: str) -> None:
    """Declare the OpenID Connect scheme of ``issuer`` (its JWTs are accepted as bearer tokens) as an
    alternative security requirement (idempotent)."""
    from a2a.types import OpenIdConnectSecurityScheme, SecurityScheme

    discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"
    card.security_schemes["oidc"].CopyFrom(
        SecurityScheme(
            open_id_connect_security_scheme=OpenIdConnectSecurityScheme(
                open_id_connect_url=discovery,
                description="A JWT from this issuer, for this agent's audience; its sub names the client.",
            )
        )
    )
    if not any("oidc" in req.schemes for req in card.security_requirements):
        card.security_requirements.append(SecurityRequirement(schemes={"oidc": StringList()}))


def card_from_json(
    data: str | bytes | Mapping[str, Any],
    *,
    source: str = "card",
    require_interfaces: bool = True,
    key_name: bool = True,
) -> AgentCard:
    """Parse and validate a card from JSON text or an already-decoded object.

    Unknown fields are errors (``ParseDict(..., ignore_unknown_fields=False)``). ``require_interfaces`` demands at
    least one ``supportedInterfaces`` entry: true for cards that must be reachable as they are (over HTTP),
    false for card files whose interfaces are filled at run time. ``key_name`` demands a name usable as a registry
    key (Podium's own agents); outside agents may have any non-empty name. Raises ``CardError`` naming ``source``.
    """
    if isinstance(data, str | bytes):
        if len(data) > MAX_CARD_BYTES:
            raise CardError(f"{source}: larger than {MAX_CARD_BYTES} bytes")
        try:
            obj = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CardError(f"{source}: not valid JSON: {exc}") from exc
    else:
        obj = data
    if not isinstance(obj, Mapping):
        raise CardError(f"{source}: an agent card must be a JSON object, not {type(obj).__name__}")
    card = AgentCard()
    try:
        ParseDict(dict(obj), card, ignore_unknown_fields=False)
    except ParseError as exc:
        raise CardError(f"{source}: {_parse_error_text(exc)}") from exc
    validate_card(card, source=source, require_interfaces=require_interfaces, key_name=key_name)
    return card


def card_to_dict(card: AgentCard) -> dict[str, Any]:
    """The card as A2A 1.0 JSON (protobuf JSON names, camelCase): what an A2A client fetches and parses."""
    return MessageToDict(card)


def card_to_json(card: AgentCard) -> str:
    return json.dumps(card_to_dict(card), separators=(",", ":"), ensure_ascii=False)


def validate_card(
    card: AgentCard, *, source: str = "card", require_interfaces: bool = True, key_name: bool = True
) -> None:
    """Semantic checks ``ParseDict`` cannot make. Raises ``CardError`` naming the first bad field."""

    def fail(field: str, problem: str) -> CardError:
        return CardError(f"{source}: {field}: {problem}")

    if not card.name.strip():
        raise fail("name", "missing")
    if key_name:
        try:
            validate_name("agent name", card.name)
        except ValueError as exc:
            raise fail("name", str(exc)) from exc
    for field in ("description", "version"):
        if not getattr(card, field).strip():
            raise fail(field, "missing")
    if not card.HasField("capabilities"):
        raise fail("capabilities", "missing (use {} for none)")
    if card.HasField("provider"):
        if not card.provider.organization:
            raise fail("provider.organization", "missing")
        _check_url(card.provider.url, "provider.url", fail, http_only=True)
    if card.documentation_url:
        _check_url(card.documentation_url, "documentationUrl", fail, http_only=True)
    _check_modes(card.default_input_modes, "defaultInputModes", fail, required=True)
    _check_modes(card.default_output_modes, "defaultOutputModes", fail, required=True)
    if not card.skills:
        raise fail("skills", "at least one skill is required")
    seen: dict[str, int] = {}
    for i, skill in enumerate(card.skills):
        where = f"skills[{i}]"
        for field in ("id", "name", "description"):
            if not getattr(skill, field).strip():
                raise fail(f"{where}.{field}", "missing")
        if any(ch.isspace() for ch in skill.id):
            raise fail(f"{where}.id", f"{skill.id!r} contains whitespace")
        if skill.id in seen:
            raise fail(f"{where}.id", f"duplicate skill id {skill.id!r} (also skills[{seen[skill.id]}])")
        seen[skill.id] = i
        if not skill.tags or any(not t.strip() for t in skill.tags):
            raise fail(f"{where}.tags", "at least one non-empty tag is required")
        _check_modes(skill.input_modes, f"{where}.inputModes", fail, required=False)
        _check_modes(skill.output_modes, f"{where}.outputModes", fail, required=False)
    for key, scheme in card.security_schemes.items():
        if scheme.WhichOneof("scheme") is None:
            raise fail(f"securitySchemes.{key}", "names no scheme type")
        if scheme.HasField("http_auth_security_scheme") and not scheme.http_auth_security_scheme.scheme:
            raise fail(f"securitySchemes.{key}.httpAuthSecurityScheme.scheme", "missing (e.g. 'Bearer')")
    for i, req in enumerate(card.security_requirements):
        for key in req.schemes:
            if key not in card.security_schemes:
                raise fail(f"securityRequirements[{i}].schemes.{key}", "not declared in securitySchemes")
    if require_interfaces and not card.supported_interfaces:
        raise fail("supportedInterfaces", "at least one interface (protocolBinding and url) is required")
    _check_interfaces(card, source)
    for i, sig in enumerate(card.signatures):
        if not sig.protected or not sig.signature:
            raise fail(f"signatures[{i}]", "needs both 'protected' and 'signature'")


def registry_name(name: str) -> str:
    """A safe registry key for an outside agent's display name (``"Currency Agent"`` -> ``currency-agent``)."""
    slug = re.sub(r"[^a-z0-9_.-]+", "-", name.strip().lower()).strip("-._")[:128]
    if not slug:
        raise CardError(f"name: {name!r} has no letters or digits to register it under")
    return slug


def _check_interfaces(card: AgentCard, source: str) -> None:
    def fail(field: str, problem: str) -> CardError:
        return CardError(f"{source}: {field}: {problem}")

    for i, iface in enumerate(card.supported_interfaces):
        where = f"supportedInterfaces[{i}]"
        if not iface.protocol_binding:
            raise fail(f"{where}.protocolBinding", "missing (JSONRPC, HTTP+JSON, GRPC or redis-streams)")
        if not iface.protocol_version:
            raise fail(f"{where}.protocolVersion", "missing (e.g. '1.0')")
        _check_url(iface.url, f"{where}.url", fail, http_only=iface.protocol_binding in _HTTP_BINDINGS)


def _check_url(url: str, field: str, fail: Any, *, http_only: bool) -> None:
    if not url:
        raise fail(field, "missing")
    parts = urlsplit(url)
    if http_only and parts.scheme not in ("http", "https"):
        raise fail(field, f"{url!r} is not an http(s) URL")
    if not parts.scheme or not parts.netloc:
        raise fail(field, f"{url!r} is not an absolute URL")


def _check_modes(modes: Iterable[str], field: str, fail: Any, *, required: bool) -> None:
    modes = list(modes)
    if required and not modes:
        raise fail(field, "at least one media type is required (e.g. 'text/plain')")
    for j, mode in enumerate(modes):
        if not _MEDIA_TYPE.match(mode):
            raise fail(f"{field}[{j}]", f"{mode!r} is not a media type like 'text/plain'")


def _parse_error_text(exc: ParseError) -> str:
    # ParseDict nests "Failed to parse X field: " prefixes and sometimes ends with ' at "AgentCard.a[0].b"'; turn
    # that into "a[0].b: reason".
    text = str(exc).split("\n")[0]
    reason = re.sub(r"(Failed to parse \w+ field: )+", "", text).strip().rstrip(".")
    at = re.search(r' at "?AgentCard\.?([\w.\[\]]*)"?$', reason)
    if at:
        reason = reason[: at.start()].strip()
        path = at.group(1)
    else:
        path = ".".join(re.findall(r"Failed to parse (\w+) field: ", text))
    return f"{path}: {reason}" if path else reason


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
