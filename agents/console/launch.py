"""Starting the console: its uvicorn server, and how ``podium up`` starts one beside the agents.

``podium up`` gives the console a token of its own when ``PODIUM_CONSOLE_TOKEN`` is not set, and prints
the console's URL with the token in the fragment (``http://127.0.0.1:8790/#token=...``): a browser never
sends a fragment to any server, and the page moves it into the tab's session storage and off the address
bar, so a newcomer can open the printed URL, watch and ask, while no other site or local user can.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn

from podium.agents.console.app import DEFAULT_PORT, TOKEN_ENV, Settings, create_app
from podium.agents.host.runtime import QuietServer
from podium.bus.keys import Keys
from podium.bus.speedups import uvicorn_http


def server(
    redis: Any, keys: Keys, settings: Settings, port: int, *, quiet_signals: bool = True
) -> uvicorn.Server:
    """The console app on ``settings.host:port`` as a uvicorn server (not started)."""
    config = uvicorn.Config(
        create_app(redis, keys, settings),
        host=settings.host,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,  # live feeds never end by themselves
        http=uvicorn_http(),
    )
    return QuietServer(config) if quiet_signals else uvicorn.Server(config)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port). Raises ``OSError`` (e.g. the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


@dataclass(frozen=True)
class UpConsole:
    """The console ``podium up`` runs: where, and with which token."""

    host: str
    port: int
    token: str

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{self.port}/#token={self.token}"

    def argv(self) -> list[str]:
        """``podium`` arguments for the console as a process of its own (the token goes by ``env``)."""
        return ["console", "--host", self.host, "--port", str(self.port)]

    def env(self) -> dict[str, str]:
        return {TOKEN_ENV: self.token}

    def server(self, redis: Any, keys: Keys) -> uvicorn.Server:
        """The console in this process (the embedded bus), on the caller's Redis client, its socket already
        listening. Raises ``OSError`` naming the flags when the port is taken."""
        try:
            sock = listen(self.host, self.port)
        except OSError as exc:
            raise OSError(
                f"the console cannot listen on {self.host}:{self.port} ({exc.strerror or exc}): "
                "choose another with --console-port, or --no-console"
            ) from exc
        settings = Settings(token=self.token, host=self.host, a2a_token=os.environ.get("PODIUM_A2A_TOKEN"))
        bound = _BoundServer(server(redis, keys, settings, self.port).config)
        bound.bound_socket = sock
        return bound


class _BoundServer(QuietServer):
    """A uvicorn server that serves on a socket bound beforehand (so a taken port fails at once, clearly)."""

    bound_socket: socket.socket

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().serve(sockets=sockets or [self.bound_socket])
        finally:
            self.bound_socket.close()


def for_up(host: str, port: int | None) -> UpConsole | None:
    """The console for ``podium up`` (None when ``port`` is None: ``--no-console``); port 0 picks a free
    one. The token is ``PODIUM_CONSOLE_TOKEN`` or a fresh random one."""
    if port is None:
        return None
    token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    return UpConsole(host=host, port=port or free_port(host), token=token)


__all__ = ["DEFAULT_PORT", "UpConsole", "for_up", "free_port", "listen", "server"]
