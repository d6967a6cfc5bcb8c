"""The compiled fast parts every Podium process uses when they are installed, and their pure-Python fallbacks.

uvloop (the event loop of every ``podium`` process), hiredis (redis-py's reply parser and, through
:func:`hiredis_packing`, its command packer) and httptools
(uvicorn's HTTP parser) are default dependencies; each is used when importable unless switched off:
``PODIUM_NO_UVLOOP=1``, ``PODIUM_NO_HIREDIS=1``, ``PODIUM_NO_HTTPTOOLS=1``, or ``PODIUM_PURE_PYTHON=1`` for
all three. The pure-Python path (asyncio's loop, redis-py's own parser, h11) behaves the same, only slower.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = ("1", "true", "yes", "on")


def _off(name: str) -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE
        for var in (f"PODIUM_NO_{name}", "PODIUM_PURE_PYTHON")
    )


def _usable(name: str, module: str) -> bool:
    return not _off(name) and importlib.util.find_spec(module) is not None


def uvloop_enabled() -> bool:
    """True when processes run on uvloop."""
    return _usable("UVLOOP", "uvloop")


def hiredis_enabled() -> bool:
    """True when redis-py parses replies with hiredis."""
    return _usable("HIREDIS", "hiredis")


def lane_enabled() -> bool:
    """True when each process's auto-pipeline drives its own Redis connection (:mod:`bus.lane`; needs
    hiredis). ``PODIUM_NO_LANE=1`` keeps it on redis-py's client."""
    return hiredis_enabled() and not _off("LANE")


def httptools_enabled() -> bool:
    """True when uvicorn parses HTTP with httptools."""
    return _usable("HTTPTOOLS", "httptools")


def run(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``anyio.run(func, *args)`` on uvloop when it is enabled, else on asyncio's own loop."""
    import anyio

    return anyio.run(func, *args, backend_options={"use_uvloop": uvloop_enabled()})


def uvicorn_http() -> str:
    """uvicorn's ``http=`` setting: httptools when enabled, else h11 (uvicorn's ``auto`` would pick
    httptools whenever it is installed)."""
    return "httptools" if httptools_enabled() else "h11"


def redis_kwargs() -> dict[str, Any]:
    """Connection keywords for redis-py: its pure-Python parser when hiredis is switched off (redis-py
    itself uses hiredis whenever it is installed)."""
    if hiredis_enabled():
        return {}
    from redis._parsers import _AsyncRESP2Parser

    return {"parser_class": _AsyncRESP2Parser}


class _HiredisPacking:
    """Packs commands as redis-py's synchronous connections do when hiredis is installed."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return _hiredis_packer().pack(*args)  # type: ignore[no-any-return]

    def pack_commands(self, commands: Any) -> list[bytes]:
        pack = _hiredis_packer().pack
        return [b"".join(chunk for command in commands for chunk in pack(*command))]


@functools.cache
def _hiredis_packer() -> Any:
    from redis.connection import HiredisRespSerializer

    return HiredisRespSerializer()


_packing_classes: dict[type, type] = {}


def hiredis_packing(connection_class: type) -> type:
    """``connection_class`` (a redis-py asyncio connection) packing commands with hiredis.

    redis-py's synchronous connections pack commands with ``hiredis.pack_command`` whenever hiredis is
    installed, but its asyncio connections always use the pure-Python packer, which cost a fifth of the CPU
    of republishing a message in ``podium bench relay``. The subclass packs the way the synchronous client
    does (``redis.connection.HiredisRespSerializer``, the same bytes on the wire); everything else is
    ``connection_class``'s own."""
    cls = _packing_classes.get(connection_class)
    if cls is None:
        cls = type(f"Hiredis{connection_class.__name__}", (_HiredisPacking, connection_class), {})
        _packing_classes[connection_class] = cls
    return cls


def describe() -> str:
    """One line naming the fast parts in use, for startup logs and benchmarks."""
    parts = {
        "uvloop": uvloop_enabled(),
        "hiredis": hiredis_enabled(),
        "lane": lane_enabled(),
        "httptools": httptools_enabled(),
    }
    return ", ".join(f"{name} {'on' if on else 'off'}" for name, on in parts.items())
