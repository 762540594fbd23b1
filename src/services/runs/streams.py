"""A run's events: kept in order so that any number of consumers can follow them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

# A quiet stream yields a heartbeat this often, so a client that left is noticed.
HEARTBEAT_SECONDS = 0.2

# (event id, SSE event name, JSON-ready data); thread streams use "<run_id>:<position>" ids.
StreamEvent = tuple[int | str, str, Any]


class RunStream:
    """The events of one run, kept so that any number of consumers can follow them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.closed = False
        self._changed = asyncio.Event()

    def publish(self, event: str, data: Any) -> None:
        self.events.append((event, data))
        self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    async def follow(self, start: int = 0, idle: float | None = None) -> AsyncIterator[tuple[int, str, Any] | None]:
        """Yield (id, event, data) from position `start` on; with `idle`, None after quiet seconds."""
        position = start
        while True:
            while position < len(self.events):
                position += 1
                yield (position - 1, *self.events[position - 1])
            if self.closed:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), idle)
            except TimeoutError:
                yield None
