"""How the cron endpoints tell this process's scheduler that a cron changed."""

from __future__ import annotations

import asyncio
import contextlib


class CronWakeup:
    """The scheduler sleeps until the next due cron or its poll; a cron created or changed here
    may be due sooner, so it is woken to look again (other processes' crons are seen at the poll)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        """Until notified or `timeout` seconds passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()
