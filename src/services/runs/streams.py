"""A run's events: kept in order so that any number of consumers can follow them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from src.services.waiting import wait_event

# A quiet stream yields a heartbeat this often, so a client that left is noticed.
HEARTBEAT_SECONDS = 0.2
# Events one run keeps for its consumers (runs.max_events_per_run).
DEFAULT_MAX_EVENTS = 20_000

# (event id, SSE event name, JSON-ready data); thread streams use "<run_id>:<position>" ids.
StreamEvent = tuple[int | str, str, Any]


class RunStream:
    """The events of one run, kept so that any number of consumers can follow them.

    At most `max_events` are kept: beyond that the oldest go (a consumer that starts
    before them starts at the oldest kept), so a run that streams without end cannot
    grow the process without bound. Positions keep counting from the first event.
    """

    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS, first: int = 0) -> None:
        self._events: list[tuple[str, Any]] = []
        # Positions before `first` belong to an earlier attempt at the run, on another process.
        self._dropped = first
        self._max_events = max_events
        self.closed = False
        self._changed = asyncio.Event()

    @property
    def length(self) -> int:
        """How many events were published (the next event's position)."""
        return self._dropped + len(self._events)

    def publish(self, event: str, data: Any) -> None:
        self._events.append((event, data))
        if len(self._events) > self._max_events + self._max_events // 4:
            # Trimmed in batches: one list copy per quarter of the limit, not one per event.
            surplus = len(self._events) - self._max_events
            del self._events[:surplus]
            self._dropped += surplus
        self._changed.set()

    def publish_at(self, position: int, event: str, data: Any) -> None:
        """An event numbered by the process executing the run (mirrored here): ignored when
        it is already known."""
        if position >= self.length:
            self.publish(event, data)

    def skip_to(self, position: int) -> None:
        """Continue the numbering at `position` (events an earlier attempt published elsewhere)."""
        if position > self.length:
            self._events.clear()
            self._dropped = position
            self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    async def follow(self, start: int = 0, idle: float | None = None) -> AsyncIterator[tuple[int, str, Any] | None]:
        """Yield (id, event, data) from position `start` on; with `idle`, None after quiet seconds."""
        position = start
        while True:
            position = max(position, self._dropped)
            while position < self.length:
                event, data = self._events[position - self._dropped]
                position += 1
                yield position - 1, event, data
                position = max(position, self._dropped)
            if self.closed:
                return
            self._changed.clear()
            if not await wait_event(self._changed, idle):
                yield None
