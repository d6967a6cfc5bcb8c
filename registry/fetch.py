"""Fetch an outside A2A agent's card over HTTP, defensively.

The URL is the agent's base URL (``/.well-known/agent-card.json`` is appended) or the card's own URL. Targets
that resolve to private, loopback, link-local or otherwise non-global addresses are refused unless allowed,
both before connecting and against the address actually connected to (so DNS rebinding does not help), and
again on every redirect. The whole fetch has one deadline, the body is streamed and cut off at a size limit,
and the response must be JSON that parses as an A2A card (0.3 cards are upgraded by ``a2a-sdk``'s parser).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx
from a2a.client.card_resolver import parse_agent_card
from a2a.types import AgentCard
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from google.protobuf.json_format import ParseError

from registry.cards import MAX_CARD_BYTES, validate_card
from registry.errors import (
    CardError,
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


async def fetch_card(
    client: httpx.AsyncClient,
    url: str,
    *,
    allow_private: bool = False,
    time_limit: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_CARD_BYTES,
) -> tuple[AgentCard, str]:
    """Fetch and validate the card at ``url``; returns it with the URL it was finally read from.

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
                    return _parse(body, target), target
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
