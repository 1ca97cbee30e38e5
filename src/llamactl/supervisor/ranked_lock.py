"""A lock granted by rank, for the capacity keeper's decisions (issue 32's priorities).

asyncio.Lock serves its waiters first come first served. Requests that wait for room to
start their instance are all woken when room may have appeared, and the first to run would
take the place: a low-priority request that waited longer would start its model before a
high-priority one. Here each acquirer gives a rank (lower goes first: ``(-priority,
arrival)``), and the lock is granted one loop turn after it is free (``call_soon``), so every
acquirer woken by the same event has queued by then and the best rank wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator

Rank = tuple[int, int]


class RankedLock:
    def __init__(self) -> None:
        self._queue: list[tuple[Rank, int, asyncio.Future[None]]] = []
        self._held = False
        self._granting = False  # a grant is scheduled
        self._order = itertools.count()  # ties in rank: first come first served

    @contextlib.asynccontextmanager
    async def hold(self, rank: Rank) -> AsyncIterator[None]:
        await self._acquire(rank)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, rank: Rank) -> None:
        turn = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (rank, next(self._order), turn))
        self._schedule()
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # granted as it was cancelled
                self._release()
            raise

    def _release(self) -> None:
        self._held = False
        self._schedule()

    def _schedule(self) -> None:
        if not self._held and not self._granting and self._queue:
            self._granting = True
            asyncio.get_running_loop().call_soon(self._grant)

    def _grant(self) -> None:
        self._granting = False
        while self._queue and not self._held:
            _, _, turn = heapq.heappop(self._queue)
            if not turn.done():  # a cancelled waiter's turn is skipped
                self._held = True
                turn.set_result(None)
