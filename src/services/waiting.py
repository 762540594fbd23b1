"""Waiting for an event with a time limit, without losing a cancellation.

On Python 3.11 `asyncio.wait_for(event.wait(), t)` swallows a cancellation that arrives in
the same loop iteration as the event being set (gh-86296): a background loop cancelled at
shutdown then runs on for ever. `asyncio.timeout` does not have that flaw.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait until `event` is set or `seconds` pass (None: no limit); True when it was set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
