"""The callers of a soak (``podium bench soak``): each sends questions over A2A HTTP without waiting for the
answer, follows its own tasks with GetTask through agent kills and a Redis restart, and records how each
ended, how long it took, and how many final statuses the task's event log holds (more than one: answered
twice)."""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import (
    GetTaskRequest,
    ListTasksRequest,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
)
from a2a.utils.errors import TaskNotFoundError

from podium.agents.client import open_client
from podium.bus.keys import Keys

FINAL = {
    TaskState.TASK_STATE_COMPLETED: "completed",
    TaskState.TASK_STATE_FAILED: "failed",
    TaskState.TASK_STATE_CANCELED: "canceled",
    TaskState.TASK_STATE_REJECTED: "rejected",
    TaskState.TASK_STATE_INPUT_REQUIRED: "input-required",
}
POLL_S = 0.5
TAG = "soakClient"


@dataclass
class Outcome:
    """How one request ended: ``completed``, ``lost`` (accepted, never finished), or a failure state."""

    client: str
    target: str
    task_id: str | None
    state: str
    reason: str = ""
    latency_ms: float = 0.0
    final_events: int = 0
    sent_at: float = 0.0  # time.monotonic() when sent


def questions(targets: list[str]) -> Callable[[random.Random, int], tuple[str, str]]:
    """The mix: a computation, a documentation question and both at once for the orchestrator, a line for
    echo; each one distinct (its own numbers), so no answer can be mistaken for another's."""

    def pick(rng: random.Random, n: int) -> tuple[str, str]:
        kinds = []
        if "orchestrator" in targets:
            a, b = rng.randint(2, 95), rng.randint(10, 9000)
            kinds += [
                ("orchestrator", f"What is {a}% of {b}?"),
                ("orchestrator", f"How does Python's with statement work? (question {n})"),
                ("orchestrator", f"How does Python's with statement work? And also, what is {a}% of {b}?"),
            ]
        if "echo" in targets:
            kinds.append(("echo", f"soak line {n}: {uuid.uuid4().hex[:8]}"))
        return rng.choice(kinds)

    return pick


class Caller:
    """One outside system calling the deployment with its own clients (one per target agent)."""

    def __init__(self, name: str, urls: dict[str, str], token: str, admin: Any, keys: Keys) -> None:
        self.name, self.urls, self.token, self.admin, self.keys = name, urls, token, admin, keys
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self.mine: dict[str, str] = {}  # task id -> target
        self.not_mine = 0
        self.pending: dict[str, tuple[str, str, float]] = {}  # accepted, not finished: target, text, sent at

    async def _client(self, target: str) -> Any:
        if target not in self._clients:
            self._clients[target] = await self._stack.enter_async_context(
                open_client(self.urls[target], token=self.token, streaming=False, timeout_s=30)
            )
        return self._clients[target]

    async def ask(self, target: str, text: str, timeout_s: float, outcomes: list[Outcome]) -> None:
        began = time.monotonic()
        message = new_text_message(text, role=Role.ROLE_USER)
        message.metadata.update({TAG: self.name})
        request = SendMessageRequest(
            message=message, configuration=SendMessageConfiguration(return_immediately=True)
        )
        try:
            client = await self._client(target)
            task = None
            async for event in client.send_message(request):
                if event.HasField("task"):
                    task = event.task
                    break
        except Exception as exc:  # what a caller sees when the agent is down at that moment
            outcomes.append(Outcome(self.name, target, None, "failed", f"send: {_why(exc)}"))
            return
        if task is None:
            outcomes.append(Outcome(self.name, target, None, "failed", "send: no task in the answer"))
            return
        self.mine[task.id] = target
        self.pending[task.id] = (target, text, began)
        outcome = await self._follow(client, target, task, began, timeout_s)
        self.pending.pop(task.id, None)
        outcome.sent_at = began
        outcomes.append(outcome)

    async def _follow(self, client: Any, target: str, task: Task, began: float, timeout_s: float) -> Outcome:
        deadline = began + timeout_s
        while task.status.state not in FINAL:
            if time.monotonic() > deadline:
                return Outcome(self.name, target, task.id, "lost", "never finished")
            await anyio.sleep(POLL_S)
            try:
                task = await client.get_task(GetTaskRequest(id=task.id, history_length=1))
            except Exception:  # agent restarting, Redis restarting: ask again
                continue
        latency = (time.monotonic() - began) * 1000
        if not _tagged(task, self.name):
            self.not_mine += 1
        state = FINAL[task.status.state]
        reason = "" if state == "completed" else f"{state}: {_status_text(task)[:80]}"
        finals = await self._final_events(target, task.id)
        return Outcome(self.name, target, task.id, state, reason, round(latency, 1), finals)

    async def _final_events(self, target: str, task_id: str) -> int:
        """Final statuses in the task's event log (its agent's key; the admin user reads every agent's)."""
        for _ in range(20):
            try:
                entries = await self.admin.xrange(self.keys.task_events(target, task_id))
                break
            except Exception:  # Redis restarting
                await anyio.sleep(1)
        else:
            return 1
        finals = 0
        for _, fields in entries:
            event = StreamResponse()
            event.ParseFromString(fields[b"e"])
            if event.HasField("status_update") and event.status_update.status.state in FINAL:
                finals += 1
        return max(finals, 1)

    async def check_isolation(self, other: Caller | None) -> dict[str, Any]:
        """What this caller sees with its own token: ListTasks on each agent it called lists only tasks it sent
        (``notMine`` counts the others), and a task of ``other``'s answers TaskNotFound as an unknown id does
        (``othersSeen`` counts those it could read)."""
        listed = 0
        for target in sorted(set(self.mine.values())):
            try:
                found = await (await self._client(target)).list_tasks(ListTasksRequest(page_size=100))
            except Exception:
                continue
            listed += len(found.tasks)
            self.not_mine += sum(1 for t in found.tasks if t.id not in self.mine)
        seen = 0
        for task_id, target in list(other.mine.items())[-10:] if other else []:
            try:
                await (await self._client(target)).get_task(GetTaskRequest(id=task_id))
                seen += 1
            except TaskNotFoundError:
                pass
            except Exception:
                continue
        return {"client": self.name, "via": "ListTasks and GetTask with its own token", "tasks": len(self.mine),
                "listed": listed, "notMine": self.not_mine, "othersSeen": seen}  # fmt: skip

    async def unfinished(self, started: float) -> list[dict[str, Any]]:
        """The tasks this caller saw accepted and not finished, each as Redis has it now (state, seconds since
        its last update): what was lost, and whether it was still moving."""
        out = []
        for task_id, (target, text, began) in sorted(self.pending.items(), key=lambda kv: kv[1][2]):
            raw = await self.admin.hmget(self.keys.task(target, task_id), ["state", "updated"])
            state = TaskState.Name(int(raw[0])) if raw[0] is not None else "absent"
            idle = round(time.time() - int(raw[1]) / 1000, 1) if raw[1] is not None else None
            out.append({"client": self.name, "target": target, "task": task_id, "question": text[:60],
                        "sentAtS": round(began - started, 1), "state": state, "idleS": idle})  # fmt: skip
        return out

    async def close(self) -> None:
        await self._stack.aclose()


def _tagged(task: Task, name: str) -> bool:
    users = [m for m in task.history if m.role == Role.ROLE_USER]
    return not users or all(m.metadata.fields.get(TAG) is None or m.metadata[TAG] == name for m in users)


def _status_text(task: Task) -> str:
    return " ".join(p.text for p in task.status.message.parts if p.text) or "no message"


def _why(exc: BaseException) -> str:
    """The kind of failure, grouped: the exception's class and the start of its message, numbers and
    addresses left out."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    words = re.sub(r"https?://\S+|\d+", "#", str(exc).splitlines()[0] if str(exc) else "")[:60].strip()
    return f"{type(exc).__name__} ({words})" if words else type(exc).__name__
