"""End to end with Claude's API shapes: a real `podium agent researcher` process configured with an API
key and ``ANTHROPIC_BASE_URL`` pointing at a fake Messages API in the test. The model asks for tool_use
of the mounted tools, which the agent runs on its real stdio docs server; the answer cites what the
tools returned."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from a2a.helpers.proto_helpers import get_data_parts
from a2a.types.a2a_pb2 import TaskState

from tests.agents.agent_procs import AgentProc, fetch_card, make_client, text_request
from tests.agents.test_llm_support import MODEL, message, text, tool_use

pytestmark = pytest.mark.anyio


def model_turn(body: dict[str, Any]) -> dict[str, Any]:
    """What a model would do next: search, read the top hit, then answer citing it."""
    last = body["messages"][-1]["content"]
    results = [b for b in last if isinstance(b, dict) and b.get("type") == "tool_result"]
    if not results:
        return message(tool_use("toolu_01", "docs__search", {"query": "with statement"}))
    content = json.loads(results[0]["content"])
    if "hits" in content:
        return message(tool_use("toolu_02", "docs__read", {"id": content["hits"][0]["id"]}))
    return message(
        text(f"- The with statement wraps a block in a context manager's methods [{content['id']}]")
    )


class FakeMessagesAPI(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        assert self.path == "/v1/messages", self.path
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.bodies.append(body)
        reply = json.dumps(model_turn(body)).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("request-id", "req_fake")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def messages_api() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: ClassVar[list[dict[str, Any]]] = []
    handler = type("Handler", (FakeMessagesAPI,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


async def test_researcher_process_runs_claudes_tool_calls_on_its_mounted_docs_server(
    redis_url: str, messages_api: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = messages_api
    env = {"ANTHROPIC_API_KEY": "sk-ant-fake", "ANTHROPIC_BASE_URL": url, "PODIUM_MODEL": MODEL}
    agent = AgentProc("researcher", redis_url, f"t{uuid.uuid4().hex[:12]}", "claude-e2e", env=env).wait_ready(
        60
    )
    try:
        client = make_client(await fetch_card(agent.url), "JSONRPC", streaming=False)
        try:
            events = [
                ev async for ev in client.send_message(text_request("What does the with statement do?"))
            ]
        finally:
            await client.close()
    finally:
        agent.close()
    task = events[-1].task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, task.status
    [data] = get_data_parts(task.artifacts[0].parts)
    assert data["engine"] == MODEL and data["toolsCalled"] == ["docs__search", "docs__read"]
    [citation] = data["citations"]
    assert citation["docId"] == "with" and "context manager" in citation["quote"]
    assert len(bodies) == 3 and {t["name"] for t in bodies[0]["tools"]} == {"docs__search", "docs__read"}
    read_result = bodies[2]["messages"][-1]["content"][0]
    assert (
        json.loads(read_result["content"])["id"] == "with"
    )  # the real docs server's page went back to the model
