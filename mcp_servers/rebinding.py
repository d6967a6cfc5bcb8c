"""The DNS-rebinding guard in front of an MCP server's ``/mcp`` endpoint, on for every bind address.

A web page can make a browser send requests to a server on the visitor's machine or network, either by
re-pointing its own host name at that address (the request then carries ``Host: evil.example``) or by
posting across origins (``Origin: http://evil.example``). The guard answers only requests whose ``Host``
names this server, and whose ``Origin``, when present, is one of its own or explicitly allowed.

The hosts allowed by default are the loopback names (``localhost``, ``127.0.0.1``, ``[::1]``), the bind
address itself, and for a wildcard bind (``0.0.0.0``, ``::``) this machine's host name; more come from
``--allowed-hosts`` / ``PODIUM_MCP_ALLOWED_HOSTS``. An entry without a port allows any port. Origins
``http(s)://<allowed host>`` are allowed, plus ``--allowed-origins`` / ``PODIUM_MCP_ALLOWED_ORIGINS``.
``*`` allows any host (or origin): only for a trusted proxy that rewrites them.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from podium.mcp_servers.errors import AllowedHostError

logger = logging.getLogger(__name__)

HOSTS_ENV = "PODIUM_MCP_ALLOWED_HOSTS"
ORIGINS_ENV = "PODIUM_MCP_ALLOWED_ORIGINS"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_BINDS = ("", "0.0.0.0", "::", "[::]")
_FIX = f"add it with --allowed-hosts or {HOSTS_ENV}"


def split_list(value: str | Iterable[str] | None) -> list[str]:
    """Entries from a comma-separated string, or from several such strings (repeated flags)."""
    if value is None:
        return []
    parts = [value] if isinstance(value, str) else list(value)
    return [item.strip() for part in parts for item in part.split(",") if item.strip()]


def _bracket(host: str) -> str:
    """A host as it appears in a Host header: IPv6 addresses in brackets, lower case, no trailing dot."""
    host = host.strip().lower().rstrip(".")
    try:
        if isinstance(ipaddress.ip_address(host.strip("[]")), ipaddress.IPv6Address):
            return f"[{host.strip('[]')}]"
    except ValueError:
        pass
    return host


def _host_port(value: str) -> tuple[str, str]:
    """Split ``name[:port]`` / ``[v6][:port]`` into the bracketed name and the port ('' when absent)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        return name + "]", rest.removeprefix(":")
    if value.count(":") > 1:  # a bare IPv6 address, no port
        return _bracket(value), ""
    name, _, port = value.partition(":")
    return _bracket(name), port


def _host_entry(entry: str) -> str:
    if entry == "*":
        return entry
    if "://" in entry or "/" in entry:
        raise AllowedHostError(
            f"allowed host {entry!r}: give a host name or address, optionally with :port, not a URL"
        )
    name, port = _host_port(entry)
    if not name or (port and not port.isdigit()):
        raise AllowedHostError(f"allowed host {entry!r}: expected NAME or NAME:PORT, e.g. calc or calc:8711")
    return f"{name}:{port}" if port else name


def _origin_entry(entry: str) -> str:
    if entry == "*":
        return entry
    parts = urlsplit(entry.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise AllowedHostError(
            f"allowed origin {entry!r}: expected scheme://host[:port], e.g. https://console.example"
        )
    name, port = _host_port(parts.netloc)
    return f"{parts.scheme}://{name}:{port}" if port else f"{parts.scheme}://{name}"


@dataclass(frozen=True)
class AllowedHosts:
    """The ``Host`` and ``Origin`` values a server answers; see the module docstring for the defaults."""

    hosts: frozenset[str]
    origins: frozenset[str]

    @classmethod
    def for_bind(
        cls, bind: str, hosts: str | Iterable[str] | None = None, origins: str | Iterable[str] | None = None
    ) -> AllowedHosts:
        """The defaults for bind address ``bind`` plus ``hosts`` and ``origins`` (comma-separated strings or
        lists of them). Raises ``AllowedHostError`` for an entry that is not a host (or an origin)."""
        names = set(LOOPBACK_NAMES)
        if bind.strip().lower() in WILDCARD_BINDS:
            hostname = socket.gethostname()
            if hostname:
                names.add(_bracket(hostname))
        else:
            names.add(_bracket(bind))
        extra_hosts = {_host_entry(h) for h in split_list(hosts)}
        all_hosts = frozenset(names | extra_hosts)
        own = {f"{scheme}://{h}" for h in all_hosts if h != "*" for scheme in ("http", "https")}
        return cls(all_hosts, frozenset(own | {_origin_entry(o) for o in split_list(origins)}))

    def host_allowed(self, header: str) -> bool:
        if "*" in self.hosts:
            return True
        name, port = _host_port(header)
        return bool(name) and (name in self.hosts or (bool(port) and f"{name}:{port}" in self.hosts))

    def origin_allowed(self, header: str | None) -> bool:
        """An absent Origin is a request not made by a web page: allowed."""
        if header is None or "*" in self.origins:
            return True
        parts = urlsplit(header.strip())
        if not parts.scheme or not parts.netloc:
            return False  # "null" (sandboxed frames, file: pages) and anything unparseable
        name, port = _host_port(parts.netloc)
        base = f"{parts.scheme.lower()}://{name}"
        return base in self.origins or (bool(port) and f"{base}:{port}" in self.origins)

    def describe(self) -> str:
        return ", ".join(sorted(self.hosts))


class RebindingGuard:
    """ASGI wrapper answering 421 to a foreign ``Host`` and 403 to a foreign ``Origin`` (JSON bodies that say
    how to allow them); everything else goes to ``app``."""

    def __init__(self, app: ASGIApp, allowed: AllowedHosts) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get(b"host", "")
        origin = headers.get(b"origin")
        if not self.allowed.host_allowed(host):
            logger.warning("refused a request for Host %r (allowed: %s)", host, self.allowed.describe())
            await _refuse(
                send, 421, "host_not_allowed", f"this MCP server does not answer to Host {host!r}; {_FIX}"
            )
            return
        if not self.allowed.origin_allowed(origin):
            logger.warning("refused a request from Origin %r", origin)
            detail = f"requests from Origin {origin!r} are not allowed; add it with --allowed-origins or {ORIGINS_ENV}"
            await _refuse(send, 403, "origin_not_allowed", detail)
            return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, error: str, detail: str) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
