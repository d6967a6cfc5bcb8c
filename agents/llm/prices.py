"""What model calls cost: USD per million input and output tokens, by model name.

The table is an estimate for budgets and the trace, not a bill: a model matches the first pattern
(``fnmatch``, lower case) that fits its name. A model on a local server (loopback or a private
address, e.g. Ollama) costs nothing; any other unknown model is priced at :data:`FALLBACK`. An agent's
config overrides the price (``"llm": {"price": {"input": 0.5, "output": 1.5}}``).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from urllib.parse import urlsplit

Price = tuple[float, float]  # USD per million tokens: (input, output)

PRICES: tuple[tuple[str, Price], ...] = (
    ("claude-*opus*", (15.0, 75.0)),
    ("claude-*sonnet*", (3.0, 15.0)),
    ("claude-*haiku*", (1.0, 5.0)),
    ("gpt-4o-mini*", (0.15, 0.6)),
    ("gpt-4o*", (2.5, 10.0)),
    ("gpt-4.1-nano*", (0.1, 0.4)),
    ("gpt-4.1-mini*", (0.4, 1.6)),
    ("gpt-4.1*", (2.0, 8.0)),
    ("gpt-5-nano*", (0.05, 0.4)),
    ("gpt-5-mini*", (0.25, 2.0)),
    ("gpt-5*", (1.25, 10.0)),
    ("o4-mini*", (1.1, 4.4)),
    ("o3*", (2.0, 8.0)),
)
FALLBACK: Price = (3.0, 15.0)
FREE: Price = (0.0, 0.0)


def price_for(model: str, base_url: str | None = None) -> Price:
    """The price of ``model``; free on a local server, :data:`FALLBACK` when unknown."""
    name = model.lower()
    for pattern, price in PRICES:
        if fnmatch.fnmatchcase(name, pattern):
            return price
    return FREE if base_url and is_local(base_url) else FALLBACK


def cost(price: Price, input_tokens: int, output_tokens: int) -> float:
    """USD for that many tokens at ``price``."""
    return round((input_tokens * price[0] + output_tokens * price[1]) / 1e6, 8)


def is_local(url: str) -> bool:
    """Whether ``url`` names this machine or a private network (a server the user runs)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".local") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private
