"""Where run records live, and the queue they wait in: in memory, or in `agent_server.runs`.

The Postgres repository is the queue every server process on the database shares (see
sql.py); the memory repository keeps the same rules for the one process it serves:
at most one run per thread running, runs of a thread taken in the order they came.
Starting and finishing a run also set its thread's status, in the same statement on
Postgres, so a run and its thread never disagree.
"""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, cast

import psycopg
from psycopg.types.json import Jsonb

from src.services.database import PostgresRecords
from src.services.runs.sql import (
    ASK_CANCEL,
    CANCEL_PENDING_RUN,
    CHANNEL,
    CLAIM_RUN,
    DELETE_OLD_EVENTS,
    DELETE_RUN,
    FINISH_RUN,
    INSERT_EVENTS,
    INSERT_PENDING_RUN,
    INSERT_STARTED_RUN,
    NEXT_EVENT_SEQ,
    NOTIFY,
    RELEASE_RUN,
    RENEW_LEASES,
    ROLL_BACK_RUN,
    SELECT_ACTIVE_RUNS,
    SELECT_ACTIVE_THREAD_RUNS,
    SELECT_EVENTS,
    SELECT_RUN,
    SELECT_THREAD_RUNS,
    SELECT_THREAD_RUNS_SINCE,
    SWEEP_EXPIRED,
    THREAD_HAS_RUN,
    WATCH_RUN,
)
from src.services.threads.repository import MemoryTables, now

ACTIVE = ("pending", "running")
GAVE_UP = "the run was cut short {attempts} times (its server stopped or lost its lease); giving up"


class NewRun(TypedDict):
    run_id: str
    thread_id: str
    assistant_id: str
    metadata: dict[str, Any]
    kwargs: dict[str, Any]
    multitask_strategy: str
    request: dict[str, Any]  # the RunRequest as JSON: any process can execute it


class RunRecord(NewRun):
    status: str
    created_at: datetime
    updated_at: datetime
    error: str | None
    owner: str | None  # the process executing it
    attempt: int  # how many times a process took it
    cancel: str | None  # interrupt or rollback, when cancelling it was asked
    watched: bool  # followed from a process that does not execute it: events go through the table


@dataclass(frozen=True)
class Swept:
    run_id: str
    thread_id: str
    # pending (taken again later), error (gave up), interrupted (cancelled), or rollback: its
    # rollback was asked, and the sweeping process now holds it to roll it back.
    status: str


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    event: str
    data: Any


class RunRepository(ABC):
    """Run records and their queue. Implementations must be safe for concurrent coroutines."""

    # Whether a run's end written by `finish_run` tells every process when a run of its thread
    # waits (Postgres: FINISH_RUN's NOTIFY). Where it does, a process need not look in the
    # queue after each run it ends; memory does not, and looking costs it nothing.
    finish_announces_waiting_runs = False

    @abstractmethod
    async def create_run(
        self, run: NewRun, owner: str | None, lease: float, thread_metadata: dict[str, Any]
    ) -> RunRecord | None:
        """Insert a run: running under `owner`'s lease when `owner` is given and its thread has
        no run pending or running (the thread then busy, with `thread_metadata` merged in), else
        pending. None when its thread does not exist."""

    @abstractmethod
    async def thread_has_run(self, thread_id: str) -> bool:
        """Whether a run of the thread is pending or running."""

    @abstractmethod
    async def claim(self, owner: str, lease: float) -> RunRecord | None:
        """Take the oldest run that may start now (its thread has nothing running and no older
        pending run) for `owner`; None when there is none."""

    @abstractmethod
    async def renew(self, owner: str, lease: float) -> dict[str, str | None]:
        """Extend the leases of `owner`'s running runs; return the ids it still owns, each with the
        cancel action asked for it (None: none)."""

    @abstractmethod
    async def sweep(self, max_attempts: int, owner: str, lease: float) -> list[Swept]:
        """Settle running runs whose lease lapsed: pending again, or error after max_attempts,
        interrupted when a cancel was asked; a run whose rollback was asked is taken by `owner`
        under a lease, for it to roll the run back (status `rollback`)."""

    @abstractmethod
    async def finish_run(
        self,
        run_id: str,
        owner: str | None,
        run_status: str,
        thread_status: str,
        values: Any | None = None,
        interrupts: dict[str, Any] | None = None,
        error: str | None = None,
        shared: bool = True,
    ) -> bool:
        """Record how the run ended and its thread's state after it (values kept unless given),
        if `owner` still holds it; False when it does not (another process took it over), or
        when the run is followed elsewhere and `shared` is false (its events are not all stored)."""

    @abstractmethod
    async def roll_back(self, run_id: str, owner: str | None) -> bool:
        """Delete a cancelled run `owner` holds (its checkpoints deleted before) and make its thread
        idle; False when `owner` does not hold it."""

    @abstractmethod
    async def release(self, run_id: str, owner: str) -> bool:
        """Put a run `owner` executes back in the queue (pending); False when it does not own it."""

    @abstractmethod
    async def get_run(self, run_id: str) -> RunRecord | None: ...

    @abstractmethod
    async def list_runs(self, thread_id: str, limit: int, offset: int, status: str | None) -> list[RunRecord]:
        """A thread's runs, newest first."""

    @abstractmethod
    async def active_runs(self, thread_id: str) -> list[RunRecord]:
        """The thread's pending and running runs, oldest first."""

    @abstractmethod
    async def find_active(
        self, thread_id: str | None, run_ids: list[str] | None, status: str | None
    ) -> list[RunRecord]:
        """Pending and running runs, of a thread and/or among ids and/or with a status (None: any)."""

    @abstractmethod
    async def runs_since(self, thread_id: str, since: datetime) -> list[RunRecord]:
        """The thread's runs created after `since`, oldest first."""

    @abstractmethod
    async def cancel_pending(self, run_id: str, reason: str) -> bool:
        """Interrupt a run nobody took yet; False when it is not pending."""

    @abstractmethod
    async def ask_cancel(self, run_id: str, action: str) -> str | None:
        """Ask the process executing a run to cancel it; its owner, or None when it is not running."""

    @abstractmethod
    async def delete_run(self, run_id: str) -> bool: ...

    @abstractmethod
    async def watch(self, run_id: str) -> RunRecord | None:
        """Mark a run as followed from another process; the run, or None when there is none or it
        ended without being followed (its events were never stored)."""

    @abstractmethod
    async def append_events(self, run_id: str, events: Sequence[StoredEvent]) -> None: ...

    @abstractmethod
    async def read_events(self, run_id: str, start: int, limit: int) -> list[StoredEvent]: ...

    @abstractmethod
    async def next_event_seq(self, run_id: str) -> int: ...

    @abstractmethod
    async def forget_events(self, older_than: float) -> int:
        """Delete the stored events of runs that ended more than `older_than` seconds ago."""

    @abstractmethod
    async def notify(self, message: dict[str, Any]) -> None:
        """Tell every server process on this backend (see notifier.py)."""


class MemoryRunRepository(RunRepository):
    """In-process dictionaries, next to the memory threads they belong to. One process: runs
    never outlive it, so leases never lapse and no event needs to go through storage."""

    def __init__(self, tables: MemoryTables) -> None:
        self._tables = tables

    def _unfinished(self) -> list[dict[str, Any]]:
        """The pending and running runs, oldest first (ids of ended or deleted runs are dropped)."""
        found = []
        for run_id in list(self._tables.unfinished):
            run = self._tables.runs.get(run_id)
            if run is None or run["status"] not in ACTIVE:
                self._tables.unfinished.discard(run_id)
            else:
                found.append(run)
        return sorted(found, key=lambda run: (run["created_at"], run["run_id"]))

    def _active(self, thread_id: str) -> list[dict[str, Any]]:
        return [run for run in self._unfinished() if run["thread_id"] == thread_id]

    async def create_run(
        self, run: NewRun, owner: str | None, lease: float, thread_metadata: dict[str, Any]
    ) -> RunRecord | None:
        thread = self._tables.threads.get(run["thread_id"])
        if thread is None:
            return None
        stamp = now()
        start = owner is not None and not self._active(run["thread_id"])
        stored: dict[str, Any] = {
            **copy.deepcopy(run),
            "status": "running" if start else "pending",
            "created_at": stamp,
            "updated_at": stamp,
            "error": None,
            "owner": owner if start else None,
            "attempt": 1 if start else 0,
            "cancel": None,
            "watched": False,
        }
        self._tables.runs[run["run_id"]] = stored
        self._tables.unfinished.add(run["run_id"])
        if start:
            thread["metadata"].update(copy.deepcopy(thread_metadata))
            thread["status"], thread["error"], thread["updated_at"] = "busy", None, stamp
        return cast(RunRecord, copy.deepcopy(stored))

    async def thread_has_run(self, thread_id: str) -> bool:
        return bool(self._active(thread_id))

    async def claim(self, owner: str, lease: float) -> RunRecord | None:
        for run in [run for run in self._unfinished() if run["status"] == "pending"]:
            if self._active(run["thread_id"])[0] is not run:  # something runs, or an older one waits
                continue
            stamp = now()
            run.update(status="running", owner=owner, attempt=run["attempt"] + 1, updated_at=stamp)
            thread = self._tables.threads.get(run["thread_id"])
            if thread is not None:
                request = run["request"]
                thread["metadata"].update(graph_id=request.get("graph_id"), assistant_id=run["assistant_id"])
                thread["status"], thread["error"], thread["updated_at"] = "busy", None, stamp
            return cast(RunRecord, copy.deepcopy(run))
        return None

    async def renew(self, owner: str, lease: float) -> dict[str, str | None]:
        runs = self._tables.runs.items()
        return {run_id: run["cancel"] for run_id, run in runs if run["owner"] == owner and run["status"] == "running"}

    async def sweep(self, max_attempts: int, owner: str, lease: float) -> list[Swept]:
        return []

    async def finish_run(
        self,
        run_id: str,
        owner: str | None,
        run_status: str,
        thread_status: str,
        values: Any | None = None,
        interrupts: dict[str, Any] | None = None,
        error: str | None = None,
        shared: bool = True,
    ) -> bool:
        run = self._tables.runs.get(run_id)
        if run is None or run["owner"] != owner:
            return False
        stamp = now()
        run.update(status=run_status, error=error, owner=None, updated_at=stamp)
        if (thread := self._tables.threads.get(run["thread_id"])) is not None:
            thread["status"], thread["error"], thread["updated_at"] = thread_status, error, stamp
            if values is not None:
                thread["values"] = values
            if interrupts is not None:
                thread["interrupts"] = interrupts
        return True

    async def roll_back(self, run_id: str, owner: str | None) -> bool:
        run = self._tables.runs.get(run_id)
        if run is None or run["owner"] != owner:
            return False
        del self._tables.runs[run_id]
        if (thread := self._tables.threads.get(run["thread_id"])) is not None:
            thread["status"], thread["error"], thread["updated_at"] = "idle", None, now()
        return True

    async def release(self, run_id: str, owner: str) -> bool:
        run = self._tables.runs.get(run_id)
        if run is None or run["owner"] != owner or run["status"] != "running":
            return False
        run.update(status="pending", owner=None, updated_at=now())
        return True

    async def get_run(self, run_id: str) -> RunRecord | None:
        run = self._tables.runs.get(run_id)
        return cast(RunRecord, copy.deepcopy(run)) if run is not None else None

    async def list_runs(self, thread_id: str, limit: int, offset: int, status: str | None) -> list[RunRecord]:
        runs = [
            run
            for run in self._tables.runs.values()
            if run["thread_id"] == thread_id and (status is None or run["status"] == status)
        ]
        runs.sort(key=lambda run: run["created_at"], reverse=True)
        return cast(list[RunRecord], copy.deepcopy(runs[offset : offset + limit]))

    async def active_runs(self, thread_id: str) -> list[RunRecord]:
        return cast(list[RunRecord], copy.deepcopy(self._active(thread_id)))

    async def find_active(
        self, thread_id: str | None, run_ids: list[str] | None, status: str | None
    ) -> list[RunRecord]:
        found = [
            run
            for run in self._unfinished()
            if (thread_id is None or run["thread_id"] == thread_id)
            and (run_ids is None or run["run_id"] in run_ids)
            and (status is None or run["status"] == status)
        ]
        return cast(list[RunRecord], copy.deepcopy(found))

    async def runs_since(self, thread_id: str, since: datetime) -> list[RunRecord]:
        found = [r for r in self._tables.runs.values() if r["thread_id"] == thread_id and r["created_at"] > since]
        return cast(list[RunRecord], copy.deepcopy(sorted(found, key=lambda run: (run["created_at"], run["run_id"]))))

    async def cancel_pending(self, run_id: str, reason: str) -> bool:
        run = self._tables.runs.get(run_id)
        if run is None or run["status"] != "pending":
            return False
        run.update(status="interrupted", error=reason, updated_at=now())
        thread = self._tables.threads.get(run["thread_id"])
        if thread is not None and thread["status"] == "busy" and not self._active(run["thread_id"]):
            thread["status"], thread["updated_at"] = "idle", now()
        return True

    async def ask_cancel(self, run_id: str, action: str) -> str | None:
        run = self._tables.runs.get(run_id)
        if run is None or run["status"] != "running":
            return None
        run["cancel"] = action
        return cast(str | None, run["owner"])

    async def delete_run(self, run_id: str) -> bool:
        return self._tables.runs.pop(run_id, None) is not None

    async def watch(self, run_id: str) -> RunRecord | None:
        return await self.get_run(run_id)

    async def append_events(self, run_id: str, events: Sequence[StoredEvent]) -> None:
        raise NotImplementedError("one process: events never need to go through storage")

    async def read_events(self, run_id: str, start: int, limit: int) -> list[StoredEvent]:
        return []

    async def next_event_seq(self, run_id: str) -> int:
        return 0

    async def forget_events(self, older_than: float) -> int:
        return 0

    async def notify(self, message: dict[str, Any]) -> None:
        raise NotImplementedError("the memory notifier delivers in process")


def run_values(run: NewRun) -> tuple[Any, ...]:
    return (
        run["run_id"],
        run["thread_id"],
        run["assistant_id"],
        Jsonb(run["metadata"]),
        Jsonb(run["kwargs"]),
        run["multitask_strategy"],
        Jsonb(run["request"]),
    )


class PostgresRunRepository(PostgresRecords, RunRepository):
    """`agent_server.runs` (and the thread status that goes with each run), on the shared pool."""

    finish_announces_waiting_runs = True

    async def create_run(
        self, run: NewRun, owner: str | None, lease: float, thread_metadata: dict[str, Any]
    ) -> RunRecord | None:
        values = run_values(run)
        try:
            if owner is not None:
                thread_id = run["thread_id"]
                params = (thread_id, Jsonb(thread_metadata), thread_id, *values, owner, lease)
                try:
                    started = await self.one(INSERT_STARTED_RUN, params)
                except psycopg.errors.UniqueViolation:
                    started = None  # another process started a run of this thread just now
                if started is not None:
                    return cast(RunRecord, started)
            return cast(RunRecord | None, await self.one(INSERT_PENDING_RUN, values))
        except psycopg.errors.ForeignKeyViolation:
            return None  # no such thread

    async def thread_has_run(self, thread_id: str) -> bool:
        return await self.one(THREAD_HAS_RUN, (thread_id,)) is not None

    async def claim(self, owner: str, lease: float) -> RunRecord | None:
        try:
            return cast(RunRecord | None, await self.one(CLAIM_RUN, (owner, lease)))
        except psycopg.errors.UniqueViolation:
            return None  # a run of that thread started elsewhere at the same moment: try again later

    async def renew(self, owner: str, lease: float) -> dict[str, str | None]:
        return {row["run_id"]: row["cancel"] for row in await self.all(RENEW_LEASES, (lease, owner))}

    async def sweep(self, max_attempts: int, owner: str, lease: float) -> list[Swept]:
        params = {
            "max_attempts": max_attempts,
            "gave_up": GAVE_UP.format(attempts=max_attempts),
            "owner": owner,
            "lease": lease,
        }
        rows = await self.all(SWEEP_EXPIRED, params)
        return [Swept(row["run_id"], row["thread_id"], row["status"]) for row in rows]

    async def finish_run(
        self,
        run_id: str,
        owner: str | None,
        run_status: str,
        thread_status: str,
        values: Any | None = None,
        interrupts: dict[str, Any] | None = None,
        error: str | None = None,
        shared: bool = True,
    ) -> bool:
        message = json.dumps({"kind": "finished", "run": run_id})
        row = await self.one(
            FINISH_RUN,
            (
                run_status,
                error,
                run_id,
                owner,
                shared,
                thread_status,
                Jsonb(values) if values is not None else None,
                Jsonb(interrupts) if interrupts is not None else None,
                error,
                CHANNEL,
                message,
            ),
        )
        return row is not None

    async def roll_back(self, run_id: str, owner: str | None) -> bool:
        message = json.dumps({"kind": "finished", "run": run_id})
        return await self.one(ROLL_BACK_RUN, (run_id, owner, CHANNEL, message)) is not None

    async def release(self, run_id: str, owner: str) -> bool:
        return await self.execute(RELEASE_RUN, (run_id, owner)) > 0

    async def get_run(self, run_id: str) -> RunRecord | None:
        return cast(RunRecord | None, await self.one(SELECT_RUN, (run_id,)))

    async def list_runs(self, thread_id: str, limit: int, offset: int, status: str | None) -> list[RunRecord]:
        return cast(list[RunRecord], await self.all(SELECT_THREAD_RUNS, (thread_id, status, status, limit, offset)))

    async def active_runs(self, thread_id: str) -> list[RunRecord]:
        return cast(list[RunRecord], await self.all(SELECT_ACTIVE_THREAD_RUNS, (thread_id,)))

    async def find_active(
        self, thread_id: str | None, run_ids: list[str] | None, status: str | None
    ) -> list[RunRecord]:
        params = (thread_id, thread_id, run_ids, run_ids, status, status)
        return cast(list[RunRecord], await self.all(SELECT_ACTIVE_RUNS, params))

    async def runs_since(self, thread_id: str, since: datetime) -> list[RunRecord]:
        return cast(list[RunRecord], await self.all(SELECT_THREAD_RUNS_SINCE, (thread_id, since)))

    async def cancel_pending(self, run_id: str, reason: str) -> bool:
        row = await self.one(CANCEL_PENDING_RUN, (reason, run_id))
        return row is not None and row["cancelled"] > 0

    async def ask_cancel(self, run_id: str, action: str) -> str | None:
        row = await self.one(ASK_CANCEL, (action, run_id))
        return None if row is None else cast(str | None, row["owner"])

    async def delete_run(self, run_id: str) -> bool:
        return await self.execute(DELETE_RUN, (run_id,)) > 0

    async def watch(self, run_id: str) -> RunRecord | None:
        if await self.execute(WATCH_RUN, (run_id,)) == 0:
            return None
        return await self.get_run(run_id)

    async def append_events(self, run_id: str, events: Sequence[StoredEvent]) -> None:
        params = (
            run_id,
            [event.seq for event in events],
            [event.event for event in events],
            [Jsonb(event.data) for event in events],
        )
        await self.execute(INSERT_EVENTS, params)

    async def read_events(self, run_id: str, start: int, limit: int) -> list[StoredEvent]:
        rows = await self.all(SELECT_EVENTS, (run_id, start, limit))
        return [StoredEvent(row["seq"], row["event"], row["data"]) for row in rows]

    async def next_event_seq(self, run_id: str) -> int:
        row = await self.one(NEXT_EVENT_SEQ, (run_id,))
        return int(row["seq"]) if row else 0

    async def forget_events(self, older_than: float) -> int:
        return await self.execute(DELETE_OLD_EVENTS, (older_than,))

    async def notify(self, message: dict[str, Any]) -> None:
        await self.execute(NOTIFY, (CHANNEL, json.dumps(message)))
