"""One turn per thread: runs of a thread execute one at a time, in arrival order."""

from __future__ import annotations

import asyncio
from collections import deque


class ThreadTurns:
    """One turn per thread: runs of a thread execute one at a time, in arrival order.

    A thread is in the map while a run holds its turn; the queue holds the runs waiting
    for it, and the turn passes straight to the next of them, so no newcomer can slip in
    between. The map forgets a thread when its last run gives the turn back.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    def held(self, thread_id: str) -> bool:
        return thread_id in self._waiting

    def take_now(self, thread_id: str) -> bool:
        """Take the turn if nobody holds it; never wait."""
        if thread_id in self._waiting:
            return False
        self._waiting[thread_id] = deque()
        return True

    async def take(self, thread_id: str) -> None:
        if self.take_now(thread_id):
            return
        handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[thread_id].append(handed)
        try:
            await handed
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self.give_back(thread_id)  # handed the turn as it was cancelled: pass it on
            else:
                self._waiting[thread_id].remove(handed)
            raise

    def give_back(self, thread_id: str) -> None:
        queue = self._waiting[thread_id]
        while queue:
            handed = queue.popleft()
            if not handed.done():
                handed.set_result(None)
                return
        del self._waiting[thread_id]
