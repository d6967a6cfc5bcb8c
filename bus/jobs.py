"""The hand-off from a consumer's loops (read, reclaim, retry) to its pool of handler workers."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Job:
    """One stream entry to run, with Redis's count of its deliveries so far."""

    entry_id: str
    fields: Mapping[Any, Any] | None
    deliveries: int
    spared: int = 0  # deliveries that failed only because Redis was out of memory: not held against it


class JobQueue:
    """Entries waiting for a worker.

    Only one idle worker is woken at a time, and a worker that takes a job while more wait wakes the next.
    Fast handlers then run back to back in one task, without a task switch per entry, while handlers that
    wait on I/O fan out to as many workers as there are jobs. The caller bounds how many jobs exist.
    Idle workers wait on bare asyncio futures, not ``anyio.Event``s: the queue sits on every request's path,
    and an anyio event costs several times a future to create, set and wait on.
    """

    def __init__(self) -> None:
        self._jobs: deque[Job] = deque()
        self._idle: deque[asyncio.Future[None]] = deque()
        self._woken = 0  # workers woken that have not run yet
        self.closed = False

    def __len__(self) -> int:
        return len(self._jobs)

    def put(self, job: Job) -> None:
        self._jobs.append(job)
        self._wake_one()

    def close(self) -> None:
        """No more jobs: workers finish what is queued, then :meth:`get` returns None."""
        self.closed = True
        while self._idle:
            self._wake_next()

    def _wake_one(self) -> None:
        if self._jobs and not self._woken:
            self._wake_next()

    def _wake_next(self) -> None:
        """Wake the longest-idle worker still waiting; cancelled waiters met on the way are dropped."""
        while self._idle:
            wake = self._idle.popleft()
            if not wake.done():
                self._woken += 1
                wake.set_result(None)
                return

    async def get(self) -> Job | None:
        """The next job, waiting for one; None once closed and drained."""
        while not self._jobs:
            if self.closed:
                return None
            wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle.append(wake)
            try:
                await wake
            except BaseException:
                if wake.done() and not wake.cancelled():  # woken, then cancelled: let another worker go
                    self._woken -= 1
                    self._wake_one()
                elif wake in self._idle:
                    self._idle.remove(wake)
                raise
            self._woken -= 1
        job = self._jobs.popleft()
        self._wake_one()
        return job


class Slots:
    """A consumer's free worker slots. Its loops take up to a batch at a time, workers give them back one by
    one, and a loop that finds none waits its turn: a slot given back goes to the longest waiter (first
    come, first served, as with ``anyio.Semaphore``). Unlike the semaphore, taking free slots costs no
    checkpoint and no call per slot; it sits on every request's path."""

    def __init__(self, total: int) -> None:
        self.free = total
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def take(self, most: int) -> int:
        """At least one slot and at most ``most``, waiting for the first while none is free."""
        if self.free > 0 and not self._waiting:
            taken = min(self.free, most)
            self.free -= taken
            return taken
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(wake)
        try:
            await wake  # handed one slot
        except BaseException:
            if wake.done() and not wake.cancelled():  # handed a slot, then cancelled: pass it on
                self.release()
            elif wake in self._waiting:
                self._waiting.remove(wake)
            raise
        more = min(self.free, most - 1)
        self.free -= more
        return 1 + more

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            while self._waiting:
                wake = self._waiting.popleft()
                if not wake.done():
                    wake.set_result(None)
                    break
            else:
                self.free += 1
