"""The A2A-over-Redis-Streams binding: its name, URLs, methods and how A2A errors travel.

A card lists the bus as one more ``AgentInterface`` with binding ``redis-streams`` and a URL
``redis-streams://<namespace>/<agent>`` naming the agent's inbox stream. Request payloads are the A2A
request protos in protobuf JSON; replies are the same response protos the JSON-RPC binding returns.
"""

from __future__ import annotations

import base64
from typing import Any, TypeVar
from urllib.parse import urlsplit

from a2a.client.errors import A2AClientError, A2AClientTimeoutError
from a2a.types.a2a_pb2 import (
    AgentInterface,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
)
from a2a.utils.errors import JSON_RPC_ERROR_CODE_MAP, A2AError, InternalError
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.message import Message as ProtoMessage

from podium.bus.errors import ConfigError
from podium.bus.keys import Keys, validate_name

M = TypeVar("M", bound=ProtoMessage)

BINDING = "redis-streams"
SCHEME = "redis-streams"

# A2A method name (as in JSON-RPC and gRPC) -> request proto type.
METHODS: dict[str, type] = {
    "SendMessage": SendMessageRequest,
    "SendStreamingMessage": SendMessageRequest,
    "GetTask": GetTaskRequest,
    "ListTasks": ListTasksRequest,
    "CancelTask": CancelTaskRequest,
    "SubscribeToTask": SubscribeToTaskRequest,
    "CreateTaskPushNotificationConfig": TaskPushNotificationConfig,
    "GetTaskPushNotificationConfig": GetTaskPushNotificationConfigRequest,
    "ListTaskPushNotificationConfigs": ListTaskPushNotificationConfigsRequest,
    "DeleteTaskPushNotificationConfig": DeleteTaskPushNotificationConfigRequest,
    "GetExtendedAgentCard": GetExtendedAgentCardRequest,
}
STREAMING = frozenset({"SendStreamingMessage", "SubscribeToTask"})

# A caller that sets envelope metadata ACCEPT = ACCEPT_PROTO may be answered with binary protobuf: a reply
# payload {PROTO_FIELD: base64 of the response proto} instead of its protobuf JSON, which costs a Python
# process far more (converting a task to and from JSON took ~1 ms of a hop's CPU; the binary form, microseconds).
# Requests without it, errors and every request payload stay protobuf JSON.
ACCEPT = "accept"
ACCEPT_PROTO = "proto"
PROTO_FIELD = (
    "@proto"  # no protobuf JSON key starts with "@" but "@type", so the two forms cannot be confused
)

_CODE_TO_ERROR = {code: cls for cls, code in JSON_RPC_ERROR_CODE_MAP.items()}
# Errors the bus itself raises (bus.consumer), not the agent.
DEADLINE_EXPIRED = "DEADLINE_EXPIRED"
DEAD_LETTERED = "DEAD_LETTERED"


def bus_url(namespace: str, agent: str) -> str:
    return f"{SCHEME}://{namespace}/{agent}"


def bus_interface(namespace: str, agent: str) -> AgentInterface:
    return AgentInterface(protocol_binding=BINDING, url=bus_url(namespace, agent), protocol_version="1.0")


def parse_bus_url(url: str) -> tuple[Keys, str]:
    """Return the namespace keys and agent name a bus URL names. Raises ``ConfigError``."""
    parts = urlsplit(url)
    agent = parts.path.strip("/")
    if parts.scheme != SCHEME or not parts.netloc or not agent:
        raise ConfigError(f"not a {BINDING} URL: {url!r}; expected {SCHEME}://<namespace>/<agent>")
    try:
        return Keys(parts.netloc), validate_name("agent name", agent)
    except ValueError as exc:
        raise ConfigError(f"{BINDING} URL {url!r}: {exc}") from exc


def encode_payload(message: ProtoMessage, binary: bool) -> dict[str, Any]:
    """A reply payload: ``message`` as protobuf JSON, or in binary form when the caller accepts it."""
    if binary:
        return {PROTO_FIELD: base64.b64encode(message.SerializeToString()).decode("ascii")}
    return MessageToDict(message, preserving_proto_field_name=False)


def decode_payload(payload: dict[str, Any], out: M) -> M:
    """Fill ``out`` from a reply payload in either form. Raises ``ParseError`` or ``DecodeError``/``ValueError``
    for a payload that is neither."""
    binary = payload.get(PROTO_FIELD)
    if isinstance(binary, str):
        out.ParseFromString(base64.b64decode(binary))
        return out
    return ParseDict(payload, out, ignore_unknown_fields=True)


def error_payload(exc: A2AError) -> dict[str, Any]:
    """The reply payload carrying an A2A error, with the JSON-RPC code HTTP would use."""
    error: dict[str, Any] = {
        "code": JSON_RPC_ERROR_CODE_MAP.get(type(exc), JSON_RPC_ERROR_CODE_MAP[InternalError]),
        "message": exc.message,
    }
    if exc.data:
        error["data"] = exc.data
    return {"error": error}


def error_from_payload(payload: dict[str, Any]) -> A2AError:
    """The A2A error an error reply stands for: the same exception class the JSON-RPC client raises."""
    error = payload.get("error")
    if not isinstance(error, dict):
        return A2AClientError(f"malformed error reply on the bus: {payload!r}")
    code, message, data = error.get("code"), str(error.get("message") or ""), error.get("data")
    if code == DEADLINE_EXPIRED:
        return A2AClientTimeoutError(message or "deadline expired before the agent took the request")
    if code == DEAD_LETTERED:
        return InternalError(message=f"request dead-lettered: {message}", data=data or None)
    cls = _CODE_TO_ERROR.get(code) if isinstance(code, int) else None
    if cls is None:
        return A2AClientError(f"A2A error {code}: {message}")
    return cls(message=message or None, data=data if isinstance(data, dict) else None)
