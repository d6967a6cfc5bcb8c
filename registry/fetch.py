"""Fetch an outside A2A agent's card over HTTP, defensively.

The URL is the agent's base URL (``/.well-known/agent-card.json`` is appended) or the card's own URL. Targets
that resolve to private, loopback, link-local or otherwise non-global addresses are refused unless allowed,
both before connecting and against the address actually connected to (so DNS rebinding does not help), and
again on every redirect. The whole fetch has one deadline, the body is streamed and cut off at a size limit,
and the response must be JSON that parses as an A2A card (0.3 cards are upgraded by ``a2a-sdk``'s parser).

The same rule admits a card, fetched or posted: :func:`check_card_urls` refuses every URL in it (interfaces,
provider, documentation, icon, OAuth and OpenID endpoints, ...) whose host is not public, because whoever later
follows those URLs (the orchestrator delegating, a client fetching a token) would otherwise be sent inside the
deployment.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx
from a2a.client.card_resolver import parse_agent_card
from a2a.types import AgentCard
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import ParseError
from google.protobuf.message import Message

from podium.bus.binding import SCHEME as BUS_SCHEME
from podium.registry.cards import MAX_CARD_BYTES, validate_card
from podium.registry.errors import (
    CardError,
    FetchError,
    NotAnAgentCard,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
    UrlNotAllowed,
)

DEFAULT_TIMEOUT = 5.0
MAX_REDIRECTS = 3


def card_url(url: str) -> str:
    """The card URL for an agent URL: as given if it names a ``.json`` file, else base + the well-known path.

    Raises ``UrlNotAllowed`` for anything but an absolute http(s) URL.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlNotAllowed(f"{url!r}: expected an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise UrlNotAllowed(f"{parts.hostname}: URLs with credentials are not accepted")
    if parts.path.endswith(".json"):
        return parts.geturl()
    return parts._replace(path=parts.path.rstrip("/") + AGENT_CARD_WELL_KNOWN_PATH, fragment="").geturl()


def is_public(address: str) -> bool:
    """Whether ``address`` is a globally routable unicast address."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host resolves to any non-public address. Raises ``UrlNotAllowed`` or
    ``UpstreamUnreachable`` (the name does not resolve)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UrlNotAllowed(f"{url!r}: bad port") from exc
    if allow_private:
        return
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UpstreamUnreachable(f"{host}: cannot resolve host name: {exc}") from exc
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if not is_public(address):
            where = host if host == address else f"{host} resolves to {address}, which"
            raise UrlNotAllowed(
                f"{where} is a private, loopback or link-local address; "
                "the registry refuses those unless started with --allow-private-urls"
            )


def card_urls(card: AgentCard) -> Iterator[tuple[str, str]]:
    """Every URL a card holds, as ``(field path, url)`` with the path in the card's JSON names.

    A URL is any non-empty string field named ``url`` or ``...Url``, found by walking the message, so fields a
    future A2A version adds are covered without a list to keep up to date. (Extension ``uri``s are
    identifiers, never fetched, and are not included.)
    """
    yield from _urls(card, "")


def _urls(message: Message, path: str) -> Iterator[tuple[str, str]]:
    for field, value in message.ListFields():
        where = f"{path}.{field.json_name}" if path else field.json_name
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                if field.message_type.fields_by_name["value"].type == FieldDescriptor.TYPE_MESSAGE:
                    for key, item in value.items():
                        yield from _urls(item, f"{where}.{key}")
            elif field.is_repeated:
                for i, item in enumerate(value):
                    yield from _urls(item, f"{where}[{i}]")
            elif not field.message_type.full_name.startswith("google.protobuf."):
                yield from _urls(value, where)
        elif field.type == FieldDescriptor.TYPE_STRING and (
            field.name == "url" or field.name.endswith("_url")
        ):
            items = list(value) if field.is_repeated else [value]
            for i, item in enumerate(items):
                if item:
                    yield (f"{where}[{i}]" if field.is_repeated else where), item


async def check_card_urls(
    card: AgentCard, *, allow_private: bool, time_limit: float = DEFAULT_TIMEOUT
) -> None:
    """Admit an outside agent's card only if every URL in it names a public host (see :func:`check_target`).

    A ``redis-streams`` interface names an inbox on this deployment's own bus, so it counts as private too, and
    so does a URL naming no host at all (``data:`` URLs, which name no target, are let through). Host names are
    resolved the way the fetch guard resolves them, within ``time_limit`` seconds in all. Raises
    ``UrlNotAllowed`` (its message names the field), ``UpstreamUnreachable`` (a host name does not resolve) or
    ``UpstreamTimeout``.
    """
    if allow_private:
        return
    try:
        with anyio.fail_after(time_limit):
            for field, url in card_urls(card):
                parts = urlsplit(url)
                scheme = parts.scheme.lower()
                if scheme == "data":
                    continue
                if scheme == BUS_SCHEME:
                    raise UrlNotAllowed(
                        f"{field}: {url!r} names an inbox on this deployment's own bus, and an outside agent is "
                        "reached over HTTP; remove that interface, or start the registry with --allow-private-urls"
                    )
                if not parts.hostname:
                    raise UrlNotAllowed(f"{field}: {url!r} names no host; expected an absolute http(s) URL")
                try:
                    await check_target(url, allow_private=False)
                except FetchError as exc:
                    raise type(exc)(f"{field}: {exc}") from exc
    except TimeoutError as exc:
        raise UpstreamTimeout(f"could not resolve the card's hosts within {time_limit:g}s") from exc


async def fetch_card(
    client: httpx.AsyncClient,
    url: str,
    *,
    allow_private: bool = False,
    time_limit: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_CARD_BYTES,
) -> tuple[AgentCard, str]:
    """Fetch and validate the card at ``url``; returns it with the URL it was finally read from.

    The card is admitted by :func:`check_card_urls`, like a posted one.
    Raises ``UrlNotAllowed``, ``UpstreamUnreachable`` (connection failed, or an HTTP error status),
    ``UpstreamTimeout`` (no complete answer within ``time_limit`` seconds), ``UpstreamTooLarge`` (over
    ``max_bytes``) or ``NotAnAgentCard``.
    """
    target = card_url(url)
    try:
        with anyio.fail_after(time_limit):
            for _ in range(MAX_REDIRECTS + 1):
                await check_target(target, allow_private=allow_private)
                body, location = await _get(client, target, allow_private=allow_private, max_bytes=max_bytes)
                if location is None:
                    card = _parse(body, target)
                    await check_card_urls(card, allow_private=allow_private, time_limit=time_limit)
                    return card, target
                target = urljoin(target, location)
                if urlsplit(target).scheme not in ("http", "https"):
                    raise UrlNotAllowed(f"{url}: redirected to a non-http(s) URL {target!r}")
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{target}: no complete answer within {time_limit:g}s") from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(f"{target}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise UpstreamUnreachable(f"{target}: {type(exc).__name__}: {exc or 'connection failed'}") from exc
    raise UpstreamUnreachable(f"{url}: more than {MAX_REDIRECTS} redirects")


async def _get(
    client: httpx.AsyncClient, url: str, *, allow_private: bool, max_bytes: int
) -> tuple[bytes, str | None]:
    headers = {"Accept": "application/json"}
    async with client.stream("GET", url, headers=headers, follow_redirects=False) as resp:
        if not allow_private:
            _check_peer(resp, url)
        if resp.is_redirect and resp.headers.get("location"):
            return b"", resp.headers["location"]
        if resp.status_code != 200:
            raise UpstreamUnreachable(f"{url}: answered HTTP {resp.status_code}, not 200 with an agent card")
        length = resp.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise UpstreamTooLarge(f"{url}: card is {int(length)} bytes; the limit is {max_bytes}")
        ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            raise NotAnAgentCard(f"{url}: content-type is {ctype or 'missing'!r}, not application/json")
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise UpstreamTooLarge(f"{url}: card is larger than the {max_bytes}-byte limit (cut off)")
            chunks.append(chunk)
        return b"".join(chunks), None


def _check_peer(resp: httpx.Response, url: str) -> None:
    stream = resp.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if peer and not is_public(str(peer[0])):
        raise UrlNotAllowed(f"{url}: connected to non-public address {peer[0]}; refused")


def _parse(body: bytes, url: str) -> AgentCard:
    try:
        data: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NotAnAgentCard(f"{url}: body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise NotAnAgentCard(f"{url}: body is JSON {type(data).__name__}, not an agent card object")
    try:
        card = parse_agent_card(data)
        validate_card(card, source=url, require_interfaces=True, key_name=False)
    except ParseError as exc:
        raise NotAnAgentCard(f"{url}: not an A2A agent card: {exc}") from exc
    except CardError as exc:
        raise NotAnAgentCard(f"not a usable A2A agent card: {exc}") from exc
    return card
