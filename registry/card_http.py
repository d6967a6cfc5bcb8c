"""Serving an Agent Card over HTTP as A2A recommends for caches: ``ETag``, ``Last-Modified`` and
``Cache-Control`` with a ``max-age``, and 304 answers to ``If-None-Match`` / ``If-Modified-Since``.

Used by every agent's ``/.well-known/agent-card.json`` and by the registry's ``GET /agents/{name}``, so a
card carries the same validators wherever it is fetched from.
"""

from __future__ import annotations

import hashlib
import json
import math
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# An agent's own card changes only when the agent restarts with other settings.
AGENT_CARD_MAX_AGE_S = 300
# A registered card changes whenever an instance registers again (heartbeat TTLs are 15 s by default).
REGISTRY_CARD_MAX_AGE_S = 30


def card_etag(card: dict[str, Any]) -> str:
    """A weak ETag over the card without ``signatures``, computed as a2a-sdk's card route does, so the
    tag is the same whichever endpoint served the card (a fresh signature of the same card keeps it)."""
    unsigned = {k: v for k, v in card.items() if k != "signatures"}
    body = json.dumps(unsigned, sort_keys=True, separators=(",", ":"))
    return f'W/"{hashlib.sha256(body.encode("utf-8")).hexdigest()}"'


def http_date(timestamp: float) -> str:
    return formatdate(math.floor(timestamp), usegmt=True)


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): ``W/"x"`` matches ``"x"``."""
    candidates = [c.strip() for c in header.split(",")]
    return "*" in candidates or any(c.removeprefix("W/") == etag.removeprefix("W/") for c in candidates)


def _unmodified_since(header: str, timestamp: float) -> bool:
    try:
        since = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False  # an unparseable date is ignored, as RFC 9110 13.1.3 asks
    return math.floor(timestamp) <= since


def card_response(
    request: Request, card: dict[str, Any], *, last_modified: float, max_age: int, etag: str | None = None
) -> Response:
    """The card as JSON with its validators, or a bodiless 304 when the client's copy is current.

    ``last_modified`` is a Unix time (when this card took its current form); ``etag`` defaults to
    :func:`card_etag`. If-None-Match, when sent, decides alone (RFC 9110 13.2.2).
    """
    headers = {
        "ETag": etag or card_etag(card),
        "Last-Modified": http_date(last_modified),
        "Cache-Control": f"public, max-age={max_age}",
    }
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        fresh = _etag_matches(if_none_match, headers["ETag"])
    else:
        since = request.headers.get("if-modified-since")
        fresh = since is not None and _unmodified_since(since, last_modified)
    if fresh:
        return Response(status_code=304, headers=headers)
    return JSONResponse(card, headers=headers)
