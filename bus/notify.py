"""In-process wake-ups for the embedded bus.

fakeredis ignores ``BLOCK`` on ``XREADGROUP``, so a reader of the embedded bus would spin. Instead every
write through :class:`bus.streams.StreamBus` bumps a per-stream version here, and a reader that found
nothing waits for the version to move (or for its block time to pass). One :class:`StreamNotifier` exists
per fake server, so every client of the same embedded server in this process shares it.

Waiters are plain asyncio events tied to the loop that waits on them: fakeredis's async client is
asyncio-only, and a notify from another thread or loop is handed over with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

import anyio

from podium.bus.connection import is_embedded

_Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Event]


class StreamNotifier:
    """Per-stream version counters and the readers waiting for them to change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._waiters: dict[str, list[_Waiter]] = {}

    def version(self, stream: str) -> int:
        """The stream's current version; pass it to :meth:`wait` after a read that found nothing."""
        return self._versions.get(stream, 0)

    def notify(self, stream: str) -> None:
        """Record a write to ``stream`` and wake everyone waiting on it."""
        with self._lock:
            self._versions[stream] = self._versions.get(stream, 0) + 1
            waiters = self._waiters.pop(stream, ())
        if not waiters:
            return
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, event in waiters:
            if loop is current:
                event.set()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def wait(self, stream: str, since: int, seconds: float | None) -> bool:
        """Wait until ``stream``'s version differs from ``since``, at most ``seconds`` (None: forever).

        Returns True when woken by a write, False when the time ran out.
        """
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._lock:
            if self._versions.get(stream, 0) != since:
                return True
            self._waiters.setdefault(stream, []).append(waiter)
        try:
            with anyio.move_on_after(seconds):
                await event.wait()
            return event.is_set()
        finally:
            with self._lock:
                waiters = self._waiters.get(stream)
                if waiters and waiter in waiters:
                    waiters.remove(waiter)
                    if not waiters:
                        del self._waiters[stream]


_NOTIFIERS: weakref.WeakKeyDictionary[Any, StreamNotifier] = weakref.WeakKeyDictionary()
_NOTIFIERS_LOCK = threading.Lock()


def notifier_for(client: Any) -> StreamNotifier | None:
    """The notifier shared by every client of ``client``'s embedded server; None for a real Redis."""
    if not is_embedded(client):
        return None
    server = client.connection_pool.connection_kwargs.get("server") or client
    with _NOTIFIERS_LOCK:
        notifier = _NOTIFIERS.get(server)
        if notifier is None:
            notifier = _NOTIFIERS[server] = StreamNotifier()
        return notifier
