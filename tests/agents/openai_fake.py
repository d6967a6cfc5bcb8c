"""A fake OpenAI-compatible server for tests (no tests here): a real Starlette app on uvicorn on a free
loopback port, speaking Chat Completions' real wire format: JSON replies, SSE chunks (content and
tool-call deltas in pieces, a usage chunk, ``[DONE]``), and OpenAI's error bodies.

Each test scripts the replies: a :class:`Turn`, an :class:`Error`, or a callable given the request
body that returns one (to act on tool results, like a model would). Every request's body, headers and
model are recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Turn:
    """One assistant turn: text and/or tool calls ``(id, name, arguments)``."""

    text: str = ""
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    usage: tuple[int, int] | None = (100, 20)
    finish: str | None = None

    @property
    def finish_reason(self) -> str:
        return self.finish or ("tool_calls" if self.tool_calls else "stop")


@dataclass
class Error:
    status: int
    message: str
    kind: str = "invalid_request_error"
    headers: dict[str, str] = field(default_factory=dict)


Reply = Turn | Error | Callable[[dict[str, Any]], "Turn | Error"]


class FakeOpenAI:
    """``POST /v1/chat/completions`` answering with the scripted replies in order (the last one
    repeats when a callable); ``GET /v1/models`` lists ``models``."""

    def __init__(self, *replies: Reply, models: tuple[str, ...] = ("fake-model",)) -> None:
        self.replies = list(replies)
        self.models = models
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.url = ""
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    @property
    def requested_models(self) -> list[str]:
        return [b.get("model", "") for b in self.bodies]

    def script(self, *replies: Reply) -> None:
        self.replies = list(replies)

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        if not self.replies:
            return _error(Error(500, "the test scripted no reply for this request", "server_error"))
        reply = (
            self.replies[0] if callable(self.replies[0]) and len(self.replies) == 1 else self.replies.pop(0)
        )
        answer = reply(body) if callable(reply) else reply
        if isinstance(answer, Error):
            return _error(answer)
        model = str(body.get("model", "fake-model"))
        if body.get("stream"):
            return StreamingResponse(_chunks(answer, model, body), media_type="text/event-stream")
        return JSONResponse(_completion(answer, model))


def _error(err: Error) -> Response:
    body = {"error": {"message": err.message, "type": err.kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=err.status, headers=err.headers)


def _usage(turn: Turn) -> dict[str, int] | None:
    if turn.usage is None:
        return None
    tokens_in, tokens_out = turn.usage
    return {
        "prompt_tokens": tokens_in,
        "completion_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
    }


def _completion(turn: Turn, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
    if turn.tool_calls:
        message["tool_calls"] = [
            {"id": id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for id, name, args in turn.tool_calls
        ]
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": turn.finish_reason, "logprobs": None}],
    }
    if turn.usage is not None:
        body["usage"] = _usage(turn)
    return body


def _chunks(turn: Turn, model: str, body: dict[str, Any]) -> Iterator[str]:
    """The turn as OpenAI streams it: a role chunk, content in pieces, each tool call's id and name
    then its arguments in fragments, the finish chunk, the usage chunk (when asked for), ``[DONE]``."""

    def chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: Any = None) -> str:
        data: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                                "created": int(time.time()), "model": model}  # fmt: skip
        data["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        if usage is not None:
            data["usage"] = usage
        return f"data: {json.dumps(data)}\n\n"

    yield ": keep-alive comment\n\n"
    yield chunk({"role": "assistant", "content": ""})
    for start in range(0, len(turn.text), 7):
        yield chunk({"content": turn.text[start : start + 7]})
    for index, (id, name, args) in enumerate(turn.tool_calls):
        head = {"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}
        yield chunk({"tool_calls": [head]})
        raw = json.dumps(args)
        for start in range(0, len(raw), 5):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": raw[start : start + 5]}}]})
    yield chunk({}, turn.finish_reason)
    if (body.get("stream_options") or {}).get("include_usage") and turn.usage is not None:
        yield chunk(None, usage=_usage(turn))
    yield "data: [DONE]\n\n"


@contextmanager
def serve(fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """Run ``fake`` on a free loopback port until the block ends; ``fake.url`` is its ``/v1`` base."""
    server = uvicorn.Server(
        uvicorn.Config(fake.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake OpenAI server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    fake.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(10)
