"""Replies in binary protobuf, only for a caller that accepts them (docs/binding-redis-streams.md, "Binary
replies"): Podium's transport asks for them and reads them; a caller that does not ask, as every other
implementation of the binding, gets protobuf JSON. Real redis-server, the probe agent of the binding tests."""

from __future__ import annotations

import base64
import uuid

import pytest
from a2a.types.a2a_pb2 import GetTaskRequest, Task
from google.protobuf.json_format import ParseDict

from podium.bus.binding import ACCEPT, ACCEPT_PROTO, PROTO_FIELD, decode_payload, encode_payload
from podium.bus.envelope import Envelope, Kind
from podium.bus.keys import Keys
from tests.agents.agent_procs import text_request
from tests.bus.test_binding_promises import AGENT, Probe, _raw_answer, _send, calling, serving

pytestmark = pytest.mark.anyio


async def test_the_transport_asks_for_binary_replies_and_a_plain_caller_gets_json(redis, keys: Keys) -> None:
    async with serving(redis, keys, Probe()), calling(redis, keys) as (_, client):
        task = await _send(client, text_request("hello"))
        got = await client.get_task(GetTaskRequest(id=task.id))
        assert got == task and got.status.state == task.status.state
        (_, fields), = await redis.xrevrange(keys.inbox(AGENT), count=1)  # fmt: skip
        assert Envelope.decode(fields[b"e"]).metadata == {ACCEPT: ACCEPT_PROTO}  # what the transport sent

        raw_to = keys.reply(
            f"raw-{uuid.uuid4().hex}"
        )  # read by nobody else (the client's reader trims its own)
        plain = await _raw_answer(redis, keys, raw_to, Envelope(method="GetTask", payload={"id": task.id}))
        assert plain.kind == Kind.RESPONSE and PROTO_FIELD not in plain.payload
        assert ParseDict(plain.payload, Task(), ignore_unknown_fields=True) == task

        asked = Envelope(method="GetTask", payload={"id": task.id}, metadata={ACCEPT: ACCEPT_PROTO})
        binary = await _raw_answer(redis, keys, raw_to, asked)
        assert binary.kind == Kind.RESPONSE and set(binary.payload) == {PROTO_FIELD}
        assert Task.FromString(base64.b64decode(binary.payload[PROTO_FIELD])) == task


def test_payload_forms_round_trip() -> None:
    task = Task(id="t1", context_id="c1")
    for binary in (False, True):
        payload = encode_payload(task, binary)
        assert (PROTO_FIELD in payload) is binary
        assert decode_payload(payload, Task()) == task
