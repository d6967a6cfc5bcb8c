"""The consumer's hand-off to its workers (``bus.jobs.JobQueue``): order, wake-ups, close, and cancellation;
and its worker slots (``bus.jobs.Slots``): batches, turns, and a slot handed to a loop that was cancelled."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest

from podium.bus.jobs import Job, JobQueue, Slots

pytestmark = pytest.mark.anyio


def _job(n: int) -> Job:
    return Job(f"{n}-0", {}, 1)


async def _settle() -> None:
    for _ in range(5):
        await anyio.lowlevel.checkpoint()


async def test_waiting_workers_take_jobs_in_order_and_close_ends_them() -> None:
    queue, taken = JobQueue(), []

    async def worker() -> None:
        while (job := await queue.get()) is not None:
            taken.append(job.entry_id)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(worker)
        await _settle()
        for n in range(5):
            queue.put(_job(n))
        await _settle()
        queue.put(_job(5))
        queue.close()
    assert taken == [f"{n}-0" for n in range(6)]
    assert await queue.get() is None  # closed and drained


async def test_a_worker_cancelled_after_its_wake_up_hands_the_job_to_another() -> None:
    queue = JobQueue()
    got: list[str] = []
    taken = anyio.Event()

    async def worker() -> None:
        while (job := await queue.get()) is not None:
            got.append(job.entry_id)
            taken.set()

    first = asyncio.create_task(worker())
    await _settle()
    second = asyncio.create_task(worker())
    await _settle()
    queue.put(_job(1))  # wakes the first idle worker only...
    first.cancel()  # ...which is cancelled before it runs: the job must reach the other one
    with anyio.fail_after(5):
        await taken.wait()
    assert got == ["1-0"] and first.cancelled()
    queue.close()
    with anyio.fail_after(5):
        await second
    assert len(queue) == 0


async def test_a_cancelled_idle_worker_is_not_woken_for_later_jobs() -> None:
    queue = JobQueue()
    got: list[str] = []
    taken = anyio.Event()

    async with anyio.create_task_group() as tg:
        idle = anyio.CancelScope()

        async def idle_worker() -> None:
            with idle:
                await queue.get()

        tg.start_soon(idle_worker)
        await _settle()
        idle.cancel()
        await _settle()

        async def worker() -> None:
            job = await queue.get()
            got.append(job.entry_id if job else "none")
            taken.set()

        tg.start_soon(worker)
        await _settle()
        queue.put(_job(7))
        with anyio.fail_after(5):
            await taken.wait()
    assert got == ["7-0"]


async def test_slots_are_taken_in_batches_and_given_to_waiters_in_turn() -> None:
    slots = Slots(5)
    assert await slots.take(3) == 3 and await slots.take(3) == 2 and slots.free == 0
    got: list[tuple[str, int]] = []

    async def loop(name: str, most: int) -> None:
        got.append((name, await slots.take(most)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(loop, "first", 4)
        await _settle()
        tg.start_soon(loop, "second", 4)
        await _settle()
        slots.release(3)  # one to each waiter in turn; the third is free, and the first to run takes it too
    assert got == [("first", 2), ("second", 1)] and slots.free == 0


async def test_a_slot_handed_to_a_loop_cancelled_before_it_ran_goes_to_the_next() -> None:
    slots = Slots(1)
    assert await slots.take(1) == 1

    async def loop() -> int:
        return await slots.take(1)

    victim = asyncio.create_task(loop())
    await _settle()
    other = asyncio.create_task(loop())
    await _settle()
    slots.release()  # hands the slot to the victim...
    victim.cancel()  # ...which is cancelled before it runs: the slot must reach the other one
    with anyio.fail_after(5):
        assert await other == 1
    assert victim.cancelled() and slots.free == 0
