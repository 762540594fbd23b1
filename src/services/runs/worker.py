"""Each process's share of the queue: it takes runs while it has free slots, renews the leases
of the runs it executes, and sweeps runs whose lease lapsed (their process died or froze).

The worker wakes when a run is queued or finished (notifier.py), when one of its own runs
ends, and on a slow poll (`poll_seconds`) in case a notification was lost. Every process
sweeps, so a run cut short is taken over within about a lease wherever processes are left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from src.services.database import one_line, unavailable_cause
from src.services.runs.repository import RunRecord, RunRepository, Swept
from src.services.waiting import wait_event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueSettings:
    """How runs are leased and looked for (settings under `runs.`)."""

    lease_seconds: float = 6.0  # a run whose owner did not renew its lease this long is taken over
    heartbeat_seconds: float = 2.0  # how often an owner renews, and every process sweeps
    poll_seconds: float = 5.0  # how often a process looks for runs without being told
    max_attempts: int = 3  # a run cut short this many times ends in error


def process_owner() -> str:
    """This process's name in the queue: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Slots:
    """How many more runs this process may execute now (runs.max_concurrency)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {size}")
        self._free = size

    @property
    def free(self) -> bool:
        return self._free > 0

    def take(self) -> bool:
        if self._free <= 0:
            return False
        self._free -= 1
        return True

    def give_back(self) -> None:
        self._free += 1


class RunWorker:
    def __init__(
        self,
        runs: RunRepository,
        owner: str,
        settings: QueueSettings,
        slots: Slots,
        on_claimed: Callable[[RunRecord], None],
        executing: Callable[[], set[str]],
        on_lost: Callable[[str], None],
        on_cancel: Callable[[str, str], None],
        on_roll_back: Callable[[Swept], None],
    ) -> None:
        self._runs = runs
        self._owner = owner
        self._settings = settings
        self._slots = slots
        self._on_claimed = on_claimed
        self._executing = executing
        self._on_lost = on_lost
        self._on_cancel = on_cancel
        self._on_roll_back = on_roll_back
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._trouble: dict[str, str] = {}  # loop -> the outage it logged, once

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "take runs": self._claim_loop,
            "keep leases": self._lease_loop,
        }
        self._tasks = [asyncio.create_task(self._guarded(name, loop), name=name) for name, loop in loops.items()]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _guarded(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run a loop for ever: a database outage is waited out, a bug logged and survived."""
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                cause = unavailable_cause(exc)
                if cause is None:
                    logger.exception("%s failed; starting over", name)
                elif name not in self._trouble:
                    self._trouble[name] = one_line(cause)
                    logger.warning("%s: waiting for the database: %s", name, self._trouble[name])
                await asyncio.sleep(self._settings.heartbeat_seconds / 2)

    def _recovered(self, name: str) -> None:
        if self._trouble.pop(name, None) is not None:
            logger.info("%s: the database answers again", name)

    async def _claim_loop(self) -> None:
        # Look first, then wait: started again after an outage, it takes what queued meanwhile
        # at once rather than a poll later (the notifications of that time are lost).
        while True:
            self._wake.clear()
            await self._claim_while_free()
            await wait_event(self._wake, self._settings.poll_seconds)

    async def _claim_while_free(self) -> None:
        while self._slots.take():
            try:
                record = await self._runs.claim(self._owner, self._settings.lease_seconds)
            except BaseException:
                self._slots.give_back()
                raise
            self._recovered("take runs")
            if record is None:
                self._slots.give_back()
                return
            self._on_claimed(record)  # the slot is the run's now

    async def _lease_loop(self) -> None:
        # This process's own leases are renewed before lapsed ones are swept: after an outage
        # longer than a lease, its sweep would otherwise find its own runs lapsed and queue
        # them again while they still execute here. Started again after an outage, it acts at once.
        while True:
            await self._renew()
            await self._sweep()
            await asyncio.sleep(self._settings.heartbeat_seconds)

    async def _renew(self) -> None:
        executing = self._executing()
        if not executing:
            return
        owned = await self._runs.renew(self._owner, self._settings.lease_seconds)
        self._recovered("keep leases")
        # Runs this process still executes but no longer owns were taken over elsewhere
        # (its lease lapsed while it was frozen or cut off): stop them, write nothing.
        for run_id in (executing & self._executing()) - owned.keys():
            self._on_lost(run_id)
        # A cancel asked from another process whose message never came (this process's
        # listening connection was being re-established): carried out a heartbeat later.
        for run_id, action in owned.items():
            if action is not None and run_id in executing:
                self._on_cancel(run_id, action)

    async def _sweep(self) -> None:
        swept = await self._runs.sweep(self._settings.max_attempts, self._owner, self._settings.lease_seconds)
        self._recovered("keep leases")
        for run in swept:
            if run.status == "rollback":
                logger.warning("run %s: its lease lapsed after its rollback was asked; rolling it back", run.run_id)
                self._on_roll_back(run)
            else:
                logger.warning("run %s: its lease lapsed; it is now %s", run.run_id, run.status)
        if any(run.status == "pending" for run in swept):
            self.wake()
