"""A run this process executes or executed lately: its record, request, events and task."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from src.services.runs.repository import RunRecord
from src.services.runs.request import RunRequest
from src.services.runs.streams import RunStream
from src.services.serialization import to_jsonable
from src.services.waiting import wait_event


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
    # While its events are shared (relay.share): how many are stored, and a signal when more are.
    sharing: bool = False
    stored_events: int = 0
    events_written: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def run_id(self) -> str:
        return str(self.record["run_id"])

    @property
    def thread_id(self) -> str:
        return str(self.record["thread_id"])

    def conclude(self, status: str) -> None:
        if not self.concluded.is_set():
            self.record["status"] = status
            self.concluded.set()

    def settle(self) -> None:
        if not self.settled.is_set():
            self.stream.close()
            self.settled.set()

    async def events_stored(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) until every event published so far is stored for the
        followers on other processes, if any follow. A follower that sees the run ended reads the
        events left and stops: they must be stored before the run's end is written."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.sharing and self.stored_events < self.stream.length:
            self.events_written.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or not await wait_event(self.events_written, remaining):
                return

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
