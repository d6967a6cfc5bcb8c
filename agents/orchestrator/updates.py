"""The caller's view of a run: trace entries streamed as A2A status updates, and the final status.

Entries are coalesced: one sender turns what queued up meanwhile into one status update (a text line
per entry, a data part per entry), at most one every ``UPDATE_WINDOW_S`` — each update is a task-store
write, and a fan-out of many steps would otherwise write per entry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from a2a.helpers.proto_helpers import new_data_part, new_text_part
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types.a2a_pb2 import Part, TaskState

from podium.agents.orchestrator.events import SessionEvent
from podium.agents.orchestrator.state.trace import TraceEntry, TraceLog

logger = logging.getLogger(__name__)

UPDATE_WINDOW_S = 0.02


class Updates:
    def __init__(self, updater: TaskUpdater, trace: TraceLog) -> None:
        self.updater = updater
        self.trace = trace
        self.closed = False  # the stream to the caller has ended (paused or terminal): nothing more is sent
        self.ended = False  # a terminal status was sent: the run must never start again
        self._outbox: list[TraceEntry] = []
        self._sender: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()  # set when the run pauses or ends: send what is queued at once

    def stream(self, entry: TraceEntry) -> None:
        """Queue ``entry`` for the caller (a trace listener)."""
        if self.closed:
            return
        self._outbox.append(entry)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            parts: list[Part] = [new_text_part("\n".join(_line(e) for e in batch))]
            parts += [new_data_part(e.dump()) for e in batch]
            await self.updater.update_status(
                TaskState.TASK_STATE_WORKING, self.updater.new_agent_message(parts)
            )
            if not self._hurry.is_set():  # gather what comes meanwhile, unless the run is ending
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), UPDATE_WINDOW_S)

    async def flush(self) -> None:
        """Send what is queued now, before a status that ends the stream (no waiting out the window)."""
        self._hurry.set()
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)
        self._hurry.clear()  # a run that goes on (after an outage) coalesces again
        await self.trace.drain()

    async def flush_quietly(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # the stream to the caller is best effort while Redis is away
            logger.debug("could not flush updates of %s: %s", self.trace.task_id, exc)

    def message(self, text: str, data: dict[str, Any]) -> Any:
        """A status message: a text part for people and a data part for programs."""
        parts: list[Part] = [new_text_part(text), new_data_part(data)]
        return self.updater.new_agent_message(parts)

    async def status(self, state: TaskState, text: str, data: dict[str, Any]) -> None:
        """A working status with a message (the stream goes on)."""
        await self.updater.update_status(state, self.message(text, data))

    async def pause(self, text: str, data: dict[str, Any]) -> None:
        """Ask the caller (input-required): the stream ends until they answer."""
        await self.flush()
        self.closed = True
        await self.updater.requires_input(self.message(text, data))

    async def end(self, state: TaskState, text: str | None) -> None:
        """The terminal status, with ``text`` as its reason."""
        await self.flush()
        self.closed = self.ended = True
        message = self.message(text, {"event": SessionEvent.END, "reason": text}) if text else None
        await self.updater.update_status(state, message)


def _plan_line(plan: dict[str, Any]) -> str:
    steps = plan.get("steps") or []
    names = []
    for s in steps:
        pattern = s.get("pattern", "task")
        label = s.get("id", "?")
        names.append(label if pattern == "task" else f"{label} ({pattern})")
    return f"{len(steps)} step(s): " + ", ".join(names)


def _line(entry: TraceEntry) -> str:
    if entry.event == "plan" and entry.data.get("plan"):
        return "Plan: " + _plan_line(entry.data["plan"])
    return entry.line()
