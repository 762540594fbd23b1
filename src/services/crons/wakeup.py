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
        """Until notified or `timeout` seconds passed. Not asyncio.wait_for: on Python 3.11 it swallows a
        cancel that arrives as the event is set (a shutdown right after a cron was created then waited
        for the scheduler task forever); asyncio.timeout lets the cancel through."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._event.wait()
        self._event.clear()
