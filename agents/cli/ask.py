"""``podium ask "question"``: ask the orchestrator over A2A and watch the plan run.

It is an ordinary A2A client (a2a-sdk over HTTP JSON-RPC, streaming): the plan, each step starting and
ending with its agent and duration, gates, votes, loops and retries go to stderr as they happen, the
answer with its sources to stdout. Approval prompts are answered on the terminal (or by ``--approve``).
Exit status: 0 completed, 1 failed/rejected/cancelled (with the reason), 2 usage, 3 unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import anyio
import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError
from a2a.helpers.proto_helpers import new_data_part, new_text_message
from a2a.types.a2a_pb2 import AgentCard, GetTaskRequest, Message, Role, SendMessageRequest, Task, TaskState
from a2a.utils.errors import A2AError
from google.protobuf.json_format import MessageToDict, ParseDict
from pydantic import ValidationError

from podium.agents.orchestrator.events import StatusEvent

DEFAULT_URL = "http://127.0.0.1:8700"
# An agent's limits (docs/configuration.md#limits), named when a question is refused for its size.
MAX_QUESTION_CHARS = 20_000  # agents.orchestrator.request.MAX_REQUEST_CHARS
MAX_BODY_BYTES = 1_000_000  # agents.host.http.DEFAULT_MAX_BODY
OK, FAILED, USAGE, UNREACHABLE = 0, 1, 2, 3


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", nargs="?", default="", help="what to ask, in quotes")
    parser.add_argument(
        "--url", default=None, help=f"the orchestrator's A2A URL (default $PODIUM_URL or {DEFAULT_URL})"
    )
    parser.add_argument("--json", action="store_true", help="print the final task as A2A JSON on stdout")
    parser.add_argument("--quiet", action="store_true", help="print only the answer")
    parser.add_argument("--approve", action="store_true", help="answer yes to every approval prompt")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds (600)")
    parser.add_argument("--token", default=None, help="bearer token (default $PODIUM_A2A_TOKEN)")
    parser.add_argument("--workflow", default=None, metavar="NAME", help="run the named workflow")
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="SLOT=VALUE",
        help="a workflow input (repeatable); sent with --workflow as {workflow, inputs} in a data part",
    )


class Asker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = (args.url or os.environ.get("PODIUM_URL") or DEFAULT_URL).rstrip("/")
        self.token = args.token or os.environ.get("PODIUM_A2A_TOKEN") or None
        self.live = sys.stderr.isatty() and not args.quiet
        self.started = time.monotonic()
        self.steps: dict[str, str] = {}  # step id -> its last state
        self.task: Task | None = None
        self._status = ""

    def say(self, line: str) -> None:
        if self.args.quiet:
            return
        self._clear()
        print(line, file=sys.stderr, flush=True)
        self._draw()

    def _clear(self) -> None:
        if self.live and self._status:
            print("\r\033[K", end="", file=sys.stderr, flush=True)

    def _draw(self) -> None:
        if not self.live:
            return
        done = sum(1 for s in self.steps.values() if s in ("completed", "failed", "skipped"))
        frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
        spin = frames[int((time.monotonic() - self.started) * 8) % len(frames)]
        self._status = f"{spin} working… {done}/{len(self.steps) or '?'} steps done, {time.monotonic() - self.started:.1f}s"
        print(f"\r{self._status}", end="", file=sys.stderr, flush=True)

    async def ticker(self) -> None:
        while self.live:
            self._draw()
            await anyio.sleep(0.125)

    async def run(self) -> int:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self.args.timeout), headers=headers, trust_env=False
        ) as http:
            card = await self._card(http)
            factory = ClientFactory(
                ClientConfig(streaming=True, supported_protocol_bindings=["JSONRPC"], httpx_client=http)
            )
            client = factory.create(card)
            message: Message = new_text_message(self.args.question, role=Role.ROLE_USER)
            if self.args.workflow:
                inputs = dict(i.split("=", 1) for i in self.args.input)
                if not self.args.question.strip():
                    del message.parts[:]  # A2A refuses an empty text part
                message.parts.append(new_data_part({"workflow": self.args.workflow, "inputs": inputs}))
            with anyio.fail_after(self.args.timeout):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self.ticker)
                    while True:
                        await self._stream(client, message)
                        if self.task is None:
                            raise A2AClientError("the orchestrator ended the stream without a task")
                        self.task = await client.get_task(GetTaskRequest(id=self.task.id))
                        state = TaskState.Name(self.task.status.state)
                        if state != "TASK_STATE_INPUT_REQUIRED":
                            break
                        answer = self._approval()
                        if answer is None:
                            tg.cancel_scope.cancel()
                            return FAILED
                        message = answer
                        message.task_id, message.context_id = self.task.id, self.task.context_id
                    tg.cancel_scope.cancel()
        self._clear()
        return self._finish()

    async def _card(self, http: httpx.AsyncClient) -> AgentCard:
        response = await http.get(f"{self.url}/.well-known/agent-card.json")
        if response.status_code != 200:
            raise A2AClientError(
                f"{self.url} answered {response.status_code} for its agent card: is it a Podium agent?"
            )
        return ParseDict(response.json(), AgentCard(), ignore_unknown_fields=True)

    async def _stream(self, client: Any, message: Message) -> None:
        async for event in client.send_message(SendMessageRequest(message=message)):
            kind = event.WhichOneof("payload")
            if kind == "task":
                self.task = event.task
            elif kind == "status_update":
                status = event.status_update.status
                if self.task is not None:
                    self.task.status.CopyFrom(status)
                self._show(status)
            elif kind == "artifact_update" and self.task is not None:
                self.task.artifacts.append(event.artifact_update.artifact)

    def _show(self, status: Any) -> None:
        """Print what one status update says: one data part per orchestrator event, else its text."""
        if not status.HasField("message"):
            return
        parts = status.message.parts
        events = [MessageToDict(p.data) for p in parts if p.HasField("data")]
        if not events:
            text = " ".join(p.text for p in parts if p.HasField("text"))
            if text:
                self.say(text)
            return
        for data in events:
            self._event(data)

    def _event(self, data: dict[str, Any]) -> None:
        """Print one status event (docs/events.md); one that is not a status event is left out."""
        try:
            ev = StatusEvent.model_validate(data)
        except ValidationError:
            return
        event, step, reason = ev.event, ev.step, ev.reason or ""
        if step and ev.state and event == "step":
            self.steps[step] = ev.state
        if event == "plan":
            plan = (ev.data or {}).get("plan", {})
            self.say(f"Plan ({ev.agent if ev.agent is not None else 'planner'}): {reason}".rstrip(": "))
            for s in plan.get("steps", []):
                self.steps.setdefault(s["id"], "planned")
                self.say(f"  {s['id']:<16} {s.get('pattern', 'task'):<8} {_skills(s)}  {s.get('title', '')}")
        elif event == "step" and ev.state == "started":
            self.say(f"▶ {step}: {reason}")
        elif event == "step":
            mark = {"completed": "✓", "failed": "✗", "skipped": "–"}.get(ev.state or "", "·")
            took = f" in {ev.duration_ms / 1000:.2f}s" if ev.duration_ms is not None else ""
            who = f" by {ev.agent}" if ev.agent else ""
            why = f": {reason}" if reason else ""
            self.say(f"{mark} {step} {ev.state}{who}{took}{why}")
        elif event == "handoff":
            via = f" via {ev.binding}" if ev.binding else ""
            self.say(f"  → {step}: {ev.agent}{via} ({ev.state or ''}) — {reason}")
        elif event in ("result", "planning", "answer", "end", "handover"):
            return
        elif event:
            self.say(f"  · {event} {ev.state or ''} {step or ''}: {reason}".replace("  :", ":"))

    def _approval(self) -> Message | None:
        prompt = _status_text(self.task)
        if self.args.approve:
            self.say("Approval asked: answering approve (--approve)")
            return new_text_message("approve", role=Role.ROLE_USER)
        if self.args.json or not sys.stdin.isatty():
            self._clear()
            print(
                f"podium ask: the orchestrator asks for approval and there is no terminal to answer on:\n{prompt}\n"
                "Rerun with --approve, or answer on the task with any A2A client "
                f"(task {self.task.id if self.task else '?'}).",
                file=sys.stderr,
            )
            return None
        self._clear()
        print(prompt, file=sys.stderr)
        while True:
            answer = input("approve / reject / edit: <new instruction> > ").strip()
            low = answer.lower()
            if low in ("approve", "yes", "y"):
                return new_text_message("approve", role=Role.ROLE_USER)
            if low in ("reject", "no", "n"):
                return new_text_message("reject", role=Role.ROLE_USER)
            if low.startswith("edit:") and answer[5:].strip():
                message = new_text_message(answer, role=Role.ROLE_USER)
                message.parts.append(new_data_part({"decision": "edit", "instruction": answer[5:].strip()}))
                return message
            print("Please answer approve, reject, or edit: <new instruction>.", file=sys.stderr)

    def _trace_url(self) -> str:
        """``--url URL `` for the trace hint when the orchestrator is not the default local one."""
        return "" if self.url == DEFAULT_URL else f"--url {self.url} "

    def _finish(self) -> int:
        task = self.task
        assert task is not None
        state = TaskState.Name(task.status.state)
        if self.args.json:
            print(json.dumps(MessageToDict(task), indent=2))
        else:
            answer = _answer_text(task)
            if answer:
                print(answer)
            if not self.args.quiet:
                took = time.monotonic() - self.started
                print(
                    f"\n({state.removeprefix('TASK_STATE_').lower()} in {took:.1f}s · task {task.id} · "
                    f"podium trace {self._trace_url()}{task.id})",
                    file=sys.stderr,
                )
        if state == "TASK_STATE_COMPLETED":
            return OK
        reason = _status_text(task) or state
        print(
            f"podium ask: the task ended {state.removeprefix('TASK_STATE_').lower()}: {reason}",
            file=sys.stderr,
        )
        return FAILED


def _skills(step: dict[str, Any]) -> str:
    """The skills a planned step calls, as its pattern says (``-`` for none, or a step not understood)."""
    from podium.agents.orchestrator.errors import PlanError
    from podium.agents.orchestrator.plan import parse_plan

    try:
        calls = parse_plan({"steps": [step]}).steps[0].calls()
    except PlanError:
        return "-"
    return "+".join(dict.fromkeys(c.skill for c in calls)) or "-"


def _answer_text(task: Task) -> str:
    for artifact in task.artifacts:
        for part in artifact.parts:
            if part.HasField("text"):
                return part.text
    return ""


def _status_text(task: Task | None) -> str:
    if task is None or not task.status.HasField("message"):
        return ""
    return " ".join(p.text for p in task.status.message.parts if p.HasField("text"))


def run(args: argparse.Namespace) -> int:
    if not args.question.strip() and not args.workflow:
        print('podium ask: the question is empty; usage: podium ask "your question"', file=sys.stderr)
        return USAGE
    bad = [i for i in args.input if "=" not in i or not i.split("=", 1)[0].strip()]
    if bad or (args.input and not args.workflow):
        why = f"--input {bad[0]!r} is not SLOT=VALUE" if bad else "--input needs --workflow NAME"
        print(f"podium ask: {why}", file=sys.stderr)
        return USAGE
    asker = Asker(args)
    try:
        return _sole(asker)
    except TimeoutError:
        asker._clear()
        print(f"podium ask: no answer within {args.timeout:g}s (raise --timeout)", file=sys.stderr)
        return FAILED
    except (httpx.ConnectError, httpx.ConnectTimeout, OSError) as exc:
        asker._clear()
        print(
            f"podium ask: cannot reach the orchestrator at {asker.url} ({exc}); start it with `podium up`, "
            "or pass --url",
            file=sys.stderr,
        )
        return UNREACHABLE
    except (A2AError, httpx.HTTPError) as exc:
        asker._clear()
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        if "HTTP Error 413" in message or getattr(exc, "status_code", None) == 413:
            print(
                f"podium ask: the question is too large for {asker.url} ({len(args.question.encode())} bytes): "
                f"a request body may hold {MAX_BODY_BYTES:,} bytes and a question "
                f"{MAX_QUESTION_CHARS:,} characters",
                file=sys.stderr,
            )
            return FAILED
        if "401" in message or "Unauthorized" in message:
            message += " (set PODIUM_A2A_TOKEN or pass --token)"
        print(f"podium ask: {message}", file=sys.stderr)
        return UNREACHABLE if "connect" in message.lower() else FAILED


def _sole(asker: Asker) -> int:
    """Run ``asker``, its task group's lone error raised bare (so it gets its one line, not a traceback)."""
    try:
        return anyio.run(asker.run)
    except BaseExceptionGroup as group:
        error: BaseException = group
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        if error is group:
            raise
        raise error from None
