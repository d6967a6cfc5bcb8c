"""a2a-sdk's no-op tracing wrappers are removed while its tracing is off, and kept while it is on. Run in
fresh interpreters: the switch is read once, when a2a-sdk is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import ROOT

PROBE = """
import json
import podium.agents.host.handler  # strips, as it is imported
from a2a.client.transports.jsonrpc import JsonRpcTransport
from a2a.server.events.event_queue_v2 import EventQueueSource
from a2a.server.request_handlers.default_request_handler_v2 import DefaultRequestHandlerV2
from a2a.server.tasks import task_manager
from podium.agents.host.handler import AgentRequestHandler
from podium.bus import a2a_spans
print(json.dumps({
    "wrapped": [a2a_spans.is_span_wrapper(f) for f in (
        DefaultRequestHandlerV2.on_message_send, DefaultRequestHandlerV2.on_get_task,
        AgentRequestHandler.on_get_task, EventQueueSource.enqueue_event, JsonRpcTransport.send_message,
        task_manager.append_artifact_to_task)],
    "again": a2a_spans.strip(),
}))
"""


def _probe(enabled: str) -> dict:
    env = {**os.environ, "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": enabled}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tracing_off_leaves_no_wrapper_on_the_hot_paths() -> None:
    result = _probe("false")
    assert result == {"wrapped": [False] * 6, "again": 0}


def test_tracing_on_keeps_every_span() -> None:
    result = _probe("true")
    assert result == {"wrapped": [True] * 6, "again": 0}
