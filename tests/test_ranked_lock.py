"""supervisor/ranked_lock.py: the capacity keeper's lock, granted by rank (issue 32)."""

from __future__ import annotations

import asyncio

from llamactl.supervisor.ranked_lock import RankedLock


async def test_woken_together_the_best_rank_goes_first_and_one_at_a_time() -> None:
    lock, order, room = RankedLock(), list[str](), asyncio.Event()

    async def waiter(label: str, rank: tuple[int, int]) -> None:
        await room.wait()
        async with lock.hold(rank):
            order.append(label)
            await asyncio.sleep(0.01)  # no other holds it meanwhile
            order.append(label)

    tasks = [asyncio.create_task(waiter(label, rank)) for label, rank in
             (("low-first", (0, 1)), ("high", (-5, 3)), ("low-second", (0, 2)))]
    await asyncio.sleep(0)
    room.set()
    await asyncio.gather(*tasks)
    assert order == ["high", "high", "low-first", "low-first", "low-second", "low-second"]


async def test_a_cancelled_waiter_neither_holds_nor_blocks_the_lock() -> None:
    lock = RankedLock()
    async with lock.hold((0, 0)):
        queued = asyncio.create_task(_take(lock, (0, 1)))
        later = asyncio.create_task(_take(lock, (0, 2)))
        await asyncio.sleep(0)
        queued.cancel()
    assert await asyncio.wait_for(later, 1) == "held"
    assert queued.cancelled()
    # Cancelled in the turn its grant arrived: it gives the lock back.
    granted = asyncio.create_task(_take(lock, (0, 3)))
    await asyncio.sleep(0)  # queued; the grant is scheduled for the next turn
    asyncio.get_running_loop().call_soon(granted.cancel)
    await asyncio.gather(granted, return_exceptions=True)
    assert await asyncio.wait_for(_take(lock, (0, 4)), 1) == "held"


async def _take(lock: RankedLock, rank: tuple[int, int]) -> str:
    async with lock.hold(rank):
        return "held"
