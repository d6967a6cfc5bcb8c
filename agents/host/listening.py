"""The agent's listening socket: bound before the server starts (so the card names the real port), the host
names a loopback agent answers to, and what to say when the port is taken."""

from __future__ import annotations

import errno
import socket
from urllib.parse import urlsplit

from podium.agents.host.settings import RuntimeConfig


def listen(host: str, port: int) -> socket.socket:
    """A bound listening socket, so the card can name the real port before the server starts."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this; without it a pre-bound socket answers small requests only after
        # the client's delayed ACK (~40 ms on Linux).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def loopback_hosts(cfg: RuntimeConfig) -> frozenset[str] | None:
    """For an agent bound to loopback: the other host names it answers to (its public URL's), else None (no
    Host check: bound beyond loopback, where authentication guards it)."""
    from podium.bus.connection import is_loopback

    if not is_loopback(cfg.host):
        return None
    public = urlsplit(cfg.public_url).hostname if cfg.public_url else None
    return frozenset({public.lower()} if public else set())


def listen_failed(host: str, port: int, exc: OSError) -> str:
    message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    if exc.errno == errno.EADDRINUSE:
        message += "; another process (another `podium up`?) has that port: stop it, or choose another port"
    return message


def url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host
