"""Reading Chat Completions' server-sent events: ``data:`` lines, tool calls that arrive in pieces,
and a usage estimate for servers that report none."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx

from podium.agents.llm.errors import LLMError
from podium.agents.llm.messages import Completion, Usage

_CHARS_PER_TOKEN = 3  # as the tool loop's estimate: pessimistic, so budgets err on the safe side


async def iter_sse_data(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Each event's JSON ``data`` until ``[DONE]`` (or the end of the stream). Comments, ``event:``
    and ``id:`` lines are skipped; a multi-line ``data`` is joined. Raises ``LLMError`` for data that
    is not JSON."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            lines.append(line[5:].removeprefix(" "))
            continue
        if line.strip() or not lines:
            continue  # a comment or another field; or a blank line between events
        data, lines = "\n".join(lines), []
        if data.strip() == "[DONE]":
            return
        yield _decode(data)
    if lines and "\n".join(lines).strip() != "[DONE]":
        yield _decode("\n".join(lines))


def _decode(data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise LLMError(f"the server streamed an event that is not JSON: {data[:200]!r}") from exc
    if not isinstance(value, dict):
        raise LLMError(f"the server streamed an event that is not a JSON object: {data[:200]!r}")
    return value


class SSEToolCalls:
    """Tool calls assembled from streamed deltas: each delta names its call by ``index``; the id and
    name come once, the arguments in fragments."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, deltas: list[dict[str, Any]]) -> None:
        for position, delta in enumerate(deltas):
            index = int(delta.get("index", position))
            call = self._calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            call["id"] = delta.get("id") or call["id"]
            function = delta.get("function") or {}
            call["name"] += function.get("name") or ""
            call["arguments"] += function.get("arguments") or ""

    def done(self) -> list[tuple[str, str, str]]:
        """``(id, name, arguments JSON)`` in index order."""
        return [(c["id"] or f"call_{i}", c["name"], c["arguments"]) for i, c in sorted(self._calls.items())]


def estimate_usage(completion: Completion, payload: dict[str, Any]) -> Completion:
    """``completion`` with its usage estimated from the request and reply text, for a server that
    reports none (budgets and spend must still be charged something)."""
    sent = json.dumps(payload.get("messages", [])) + json.dumps(payload.get("tools", []))
    got = completion.text + "".join(json.dumps(c.arguments) for c in completion.tool_calls)
    usage = Usage(len(sent) // _CHARS_PER_TOKEN + 1, len(got) // _CHARS_PER_TOKEN + 1)
    return replace(completion, usage=usage)
