"""One trace across processes: the caller's traceparent reaches the orchestrator over HTTP, the
orchestrator's delegations carry it over the bus to the specialists, and the researcher's tool calls carry
it over MCP (stdio) to its docs server. Every process writes its spans to its own file (PODIUM_OTEL_FILE);
the test checks they share the caller's trace id and that each parent link points at the span that made
the hop."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.client.client import ClientCallContext
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import GetTaskRequest, Role, SendMessageRequest, TaskState

from tests.agents.agent_procs import fetch_card
from tests.agents.orchestrator.cluster import Cluster, status_text
from tests.support import ROOT, RedisServer, wait_until

pytestmark = pytest.mark.anyio

TRACE_ID = uuid.uuid4().hex
CALLER_SPAN = uuid.uuid4().hex[:16]


def spans(folder: Path) -> list[dict[str, Any]]:
    found = []
    for path in folder.glob("spans-*.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip():
                found.append(json.loads(line))
    return found


async def test_one_trace_spans_the_caller_orchestrator_specialists_and_mcp_servers(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    cluster = Cluster(redis_server.url, f"t{uuid.uuid4().hex[:12]}", tmp_path / "home")
    cluster.env["PODIUM_OTEL_FILE"] = str(tmp_path / "spans-{pid}.jsonl")
    # The researcher's docs server as its own stdio process, so the trace crosses an MCP transport.
    shutil.copy(
        ROOT / "tests" / "agents" / "stdio_config" / "researcher.json", cluster.configs / "researcher.json"
    )
    try:
        cluster.start("researcher", "writer", "reviewer", "orchestrator")
        card = await fetch_card(cluster.orchestrator_url)
        async with httpx.AsyncClient(timeout=120) as http:
            client = ClientFactory(ClientConfig(streaming=False, supported_protocol_bindings=["JSONRPC"],
                                                httpx_client=http)).create(card)  # fmt: skip
            context = ClientCallContext(service_parameters={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"})
            message = new_text_message("How does the with statement work?", role=Role.ROLE_USER)
            events = [
                e async for e in client.send_message(SendMessageRequest(message=message), context=context)
            ]
            task = await client.get_task(GetTaskRequest(id=events[-1].task.id))
        assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    finally:
        cluster.close()  # SIGTERM: every process has written its spans (they are written as they end)
    wait_until(
        lambda: any("docs.search" in s["name"] for s in spans(tmp_path)), timeout=10, what="docs spans"
    )
    found = spans(tmp_path)
    ours = [s for s in found if s["context"]["trace_id"] == f"0x{TRACE_ID}"]
    # every span about this request is in the caller's trace (the others are MCP session set-up at start)
    request_spans = [s for s in found if s["name"].split()[0] in ("delegate", "step", "plan", "tool", "mcp")
                     or s["name"].endswith(" execute")]  # fmt: skip
    assert request_spans and all(s in ours for s in request_spans), [
        (s["name"], s["context"]["trace_id"]) for s in request_spans if s not in ours
    ]
    by_id = {s["context"]["span_id"]: s for s in ours}
    services = {s["resource"]["attributes"]["service.name"] for s in ours}
    assert {
        "podium-orchestrator",
        "podium-researcher",
        "podium-writer",
        "podium-reviewer",
        "podium-mcp-docs",
    } <= services

    def parent(span: dict[str, Any]) -> dict[str, Any]:
        return by_id[span["parent_id"]]

    def service(span: dict[str, Any]) -> str:
        return str(span["resource"]["attributes"]["service.name"])

    [root] = [s for s in ours if s["name"] == "orchestrator execute"]
    assert root["parent_id"] == f"0x{CALLER_SPAN}"  # continues the caller's span, over HTTP
    executes = [s for s in ours if s["name"] in ("researcher execute", "writer execute", "reviewer execute")]
    assert len(executes) >= 3
    for execute in executes:
        hop = parent(execute)  # over the bus: the orchestrator's delegation span
        assert hop["name"].startswith("delegate ") and hop["attributes"]["podium.binding"] == "redis-streams"
        assert (
            hop["attributes"]["podium.agent"] == execute["name"].split()[0]
            and service(hop) == "podium-orchestrator"
        )
        assert parent(parent(hop))["name"] == "orchestrator execute"  # delegate -> step -> the request
    docs = [s for s in ours if s["name"].startswith("mcp docs.")]
    assert {s["name"] for s in docs} >= {"mcp docs.search", "mcp docs.read"}
    for span in docs:  # over MCP stdio: up through the MCP client's send span to the researcher's tool span
        up = parent(span)
        while service(up) == "podium-researcher" and not up["name"].startswith("tool docs__"):
            up = parent(up)
        assert (
            up["name"] == f"tool docs__{span['name'].split('.')[-1]}" and service(up) == "podium-researcher"
        )
        assert parent(up)["name"] == "researcher execute"
