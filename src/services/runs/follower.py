"""GET /threads/{id}/stream: the runs of a thread, one after another, as they come."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

from src.services.errors import InvalidRequest
from src.services.runs.active import ActiveRun
from src.services.runs.streams import HEARTBEAT_SECONDS, StreamEvent
from src.services.validation import parse_uuid
from src.services.waiting import wait_event


def thread_event_id(value: str) -> tuple[str, int]:
    run_id, _, position = value.rpartition(":")
    try:
        return parse_uuid(run_id, "Last-Event-ID"), int(position)
    except (InvalidRequest, ValueError):
        raise InvalidRequest(f"Last-Event-ID must be an event id of this thread stream, got {value!r}") from None


class ThreadFollower:
    """One `GET /threads/{id}/stream` client: the runs of its thread, one after another, as they come.

    The run service adds each new run of the thread; `events` follows them in order of
    creation (runs of a thread execute in that order) and waits, with heartbeats, for
    the next. `close` (the client left) unregisters it so nothing keeps it alive.
    """

    def __init__(self, thread_id: str, modes: set[str], on_close: Callable[[], None]) -> None:
        self.thread_id = thread_id
        self._modes = modes
        self._on_close = on_close
        self._runs: deque[tuple[ActiveRun, int]] = deque()
        self._added = asyncio.Event()
        self._closed = False
        # Looks for runs of the thread created on other processes (the run service's).
        self.discovery: asyncio.Task[None] | None = None

    def add(self, run: ActiveRun, start: int = 0) -> None:
        self._runs.append((run, start))
        self._added.set()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._added.set()
            self._on_close()

    async def events(self) -> AsyncIterator[StreamEvent | None]:
        run_events, lifecycle = "run_modes" in self._modes, "lifecycle" in self._modes
        try:
            while not self._closed:
                if not self._runs:
                    self._added.clear()
                    if not await wait_event(self._added, HEARTBEAT_SECONDS):
                        yield None
                    continue
                run, start = self._runs.popleft()
                run_id = run.record["run_id"]
                async for item in run.stream.follow(start, idle=HEARTBEAT_SECONDS):
                    if item is None:
                        yield None
                        continue
                    position, event, data = item
                    if run_events or (lifecycle and event == "metadata"):
                        yield f"{run_id}:{position}", event, data
                    if self._closed:
                        return
                if start <= run.stream.length:  # not already past the run's end
                    yield f"{run_id}:{run.stream.length}", "metadata", {"status": "run_done", "run_id": run_id}
        finally:
            self.close()
