"""A run this process executes or executed lately: its record, request, events and task."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from src.services.runs.repository import RunRecord
from src.services.runs.request import RunRequest
from src.services.runs.streams import RunStream
from src.services.serialization import to_jsonable


@dataclass
class ActiveRun:
    record: dict[str, Any]  # the run as the API shows it (public_run), kept current
    request: RunRequest
    stream: RunStream = field(default_factory=RunStream)
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    rollback: bool = False
    final: Any = None
    consumers: int = 0
    # Set once the outcome is known (final values, an error, a cancellation).
    concluded: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once the run's end is written, or the database stopped it from being written for
    # now: waiters answer and streams end then (see `settle`).
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    # What made the run fail, if anything did (a database outage is answered with 503).
    failure: BaseException | None = None
    # Why the run's end is not written yet: the database is away (its writes are retried).
    stalled: BaseException | None = None
    # Where it executes: here (this process took it), or elsewhere (followed by a mirror).
    executing_here: bool = False
    attempt: int = 1
    # Set by the graceful stop: the run goes back to the queue instead of being interrupted.
    handed_back: bool = False
    # Background work for the run: sharing its events with other processes, mirroring them.
    helpers: list[asyncio.Task[None]] = field(default_factory=list)
    # Set while its events are shared with other processes: the run's end waits for them.
    events_written: Callable[[], Awaitable[bool]] | None = None

    @property
    def run_id(self) -> str:
        return str(self.record["run_id"])

    @property
    def thread_id(self) -> str:
        return str(self.record["thread_id"])

    async def share_all_events(self) -> None:
        """Before the run's end is recorded: followers on other processes that see the end
        must find every event already written."""
        if self.events_written is not None:
            await self.events_written()

    def conclude(self, status: str) -> None:
        if not self.concluded.is_set():
            self.record["status"] = status
            self.concluded.set()

    def settle(self) -> None:
        if not self.settled.is_set():
            self.stream.close()
            self.settled.set()

    def stall(self, cause: BaseException) -> None:
        """The run's end cannot be written while the database is away: release its waiters."""
        if self.stalled is None:
            self.stalled = cause
        self.settle()


def public_run(record: RunRecord) -> dict[str, Any]:
    """A run as the LangGraph API returns it."""
    return {
        "run_id": record["run_id"],
        "thread_id": record["thread_id"],
        "assistant_id": record["assistant_id"],
        "created_at": to_jsonable(record["created_at"]),
        "updated_at": to_jsonable(record["updated_at"]),
        "status": record["status"],
        "metadata": record["metadata"],
        "kwargs": record["kwargs"],
        "multitask_strategy": record["multitask_strategy"],
    }
