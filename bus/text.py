"""One reply item from Redis as ``str``, whether the client decodes responses or not."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
    """``value`` as text: bytes decoded as UTF-8 (undecodable bytes replaced), ``None`` as ``""``."""
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


__all__ = ["text"]
