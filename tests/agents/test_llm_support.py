"""Shared doubles for the LLM tests (no tests here): a fake Anthropic Messages API served through
``httpx2.MockTransport`` with the API's real JSON shapes, and a calculator ToolBox doing real work."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2

from podium.agents.host.tools import ToolResult, ToolSpec
from podium.agents.llm import AnthropicEngine, RetryPolicy

MODEL = "claude-sonnet-5-5"
API_KEY = "sk-ant-api03-test-key-do-not-log"

Reply = dict[str, Any] | httpx2.Response | Callable[[dict[str, Any]], "dict[str, Any] | httpx2.Response"]


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": id, "name": name, "input": arguments}


def message(
    *content: dict[str, Any],
    stop_reason: str | None = None,
    input_tokens: int = 100,
    output_tokens: int = 20,
    cache_read: int = 0,
) -> dict[str, Any]:
    """A Messages API response body, as the API sends it."""
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cache_read,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        },
    }


def error(status: int, kind: str, detail: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    """An API error response, as the API sends it."""
    body = {
        "type": "error",
        "error": {"type": kind, "message": detail},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }
    return httpx2.Response(
        status, json=body, headers={"request-id": "req_011CSHoEeqs5C35K2UUqR7Fy", **(headers or {})}
    )


class MessagesAPI:
    """``POST /v1/messages`` answering with ``replies`` in order; keeps each request's JSON body and
    headers. A reply that is a callable gets the request body (to act on tool results, like a model)."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[httpx2.Headers] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        assert request.method == "POST" and request.url.path == "/v1/messages", request.url
        body = json.loads(request.content)
        self.requests.append(body)
        self.headers.append(request.headers)
        assert self.replies, f"unexpected request #{len(self.requests)}"
        reply = self.replies.pop(0)
        if callable(reply):
            reply = reply(body)
        if isinstance(reply, httpx2.Response):
            return reply
        return httpx2.Response(200, json=reply, headers={"request-id": "req_011CSHoEeqs5C35K2UUqR7Fy"})


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of a request's last user message."""
    last = body["messages"][-1]
    assert last["role"] == "user"
    return [b for b in last["content"] if b["type"] == "tool_result"]


class Sleeps:
    """A RetryPolicy ``sleep`` that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@asynccontextmanager
async def anthropic_engine(
    api: MessagesAPI, *, sleeps: Sleeps | None = None, max_attempts: int = 4, model: str = MODEL
) -> AsyncIterator[AnthropicEngine]:
    """An AnthropicEngine whose HTTP goes to ``api``; retries never wait and jitter is zero."""
    retry = RetryPolicy(max_attempts=max_attempts, sleep=sleeps or Sleeps(), rand=lambda: 0.0)
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(api)) as http:
        async with AnthropicEngine(api_key=API_KEY, model=model, http_client=http, retry=retry) as engine:
            yield engine


def _number_schema(*names: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {n: {"type": "number"} for n in names},
        "required": list(names),
    }


class Calculator:
    """A real ToolBox: arithmetic on the arguments it is given. Bad input and division by zero come
    back as error results, as ToolBox requires."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def specs(self) -> list[ToolSpec]:
        return [
            ToolSpec("add", "Add two numbers.", _number_schema("a", "b")),
            ToolSpec("multiply", "Multiply two numbers.", _number_schema("a", "b")),
            ToolSpec("divide", "Divide a by b.", _number_schema("a", "b")),
            ToolSpec("sqrt", "Square root of x.", _number_schema("x")),
        ]

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        self.calls.append((name, arguments))
        try:
            if name == "sqrt":
                x = float(arguments["x"])
                if x < 0:
                    return ToolResult(text=f"cannot take the square root of {x:g}", is_error=True)
                return _number(math.sqrt(x))
            a, b = float(arguments["a"]), float(arguments["b"])
        except (KeyError, TypeError, ValueError) as exc:
            return ToolResult(text=f"bad arguments for {name}: {exc!r}", is_error=True)
        if name == "add":
            return _number(a + b)
        if name == "multiply":
            return _number(a * b)
        if name == "divide":
            if b == 0:
                return ToolResult(text="division by zero", is_error=True)
            return _number(a / b)
        return ToolResult(text=f"unknown tool {name!r}", is_error=True)


def _number(value: float) -> ToolResult:
    return ToolResult(text=f"{value:g}", data={"value": value})
