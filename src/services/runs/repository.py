"""Where run records live: in memory, or in `agent_server.runs` (statements in sql.py).

Starting and finishing a run also set its thread's status, in the same statement on
Postgres, so a run and its thread never disagree.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, TypedDict, cast

import psycopg
from psycopg.types.json import Jsonb

from src.services.database import PostgresRecords
from src.services.runs.sql import (
    DELETE_RUN,
    FAIL_ORPHANED_RUNS,
    FINISH_RUN,
    INSERT_RUN,
    INSERT_STARTED_RUN,
    ORPHANED_RUN_ERROR,
    RESET_BUSY_THREADS,
    SELECT_RUN,
    SELECT_THREAD_RUNS,
    START_RUN,
)
from src.services.threads.repository import MemoryTables, now


class NewRun(TypedDict):
    run_id: str
    thread_id: str
    assistant_id: str
    status: str
    metadata: dict[str, Any]
    kwargs: dict[str, Any]
    multitask_strategy: str


class RunRecord(NewRun):
    created_at: datetime
    updated_at: datetime
    error: str | None


class RunRepository(ABC):
    """Run records. Implementations must be safe for concurrent coroutines."""

    @abstractmethod
    async def create_run(self, run: NewRun, thread_metadata: dict[str, Any] | None = None) -> RunRecord | None:
        """Insert a run record; None when its thread does not exist.

        With `thread_metadata` the run is inserted already running, as `start_run` would
        leave it (its thread busy, with `thread_metadata` merged in)."""

    @abstractmethod
    async def get_run(self, run_id: str) -> RunRecord | None: ...

    @abstractmethod
    async def start_run(self, run_id: str, thread_id: str, thread_metadata: dict[str, Any]) -> None:
        """The run is running, its thread busy (with `thread_metadata` merged in)."""

    @abstractmethod
    async def finish_run(
        self,
        run_id: str,
        thread_id: str,
        run_status: str,
        thread_status: str,
        values: Any | None = None,
        interrupts: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record how the run ended and the thread's state after it (values kept unless given).

        The repository keeps `values` and `interrupts` as given: callers hand over objects they
        do not touch again."""

    @abstractmethod
    async def list_runs(self, thread_id: str, limit: int, offset: int, status: str | None) -> list[RunRecord]:
        """A thread's runs, newest first."""

    @abstractmethod
    async def delete_run(self, run_id: str) -> bool: ...

    @abstractmethod
    async def recover(self) -> int:
        """Mark runs and threads left in flight by a previous process; return how many runs."""


class MemoryRunRepository(RunRepository):
    """In-process dictionaries, next to the memory threads they belong to."""

    def __init__(self, tables: MemoryTables) -> None:
        self._tables = tables

    async def create_run(self, run: NewRun, thread_metadata: dict[str, Any] | None = None) -> RunRecord | None:
        if run["thread_id"] not in self._tables.threads:
            return None
        stamp = now()
        stored = {**copy.deepcopy(run), "created_at": stamp, "updated_at": stamp, "error": None}
        self._tables.runs[run["run_id"]] = stored
        if thread_metadata is not None:
            await self.start_run(run["run_id"], run["thread_id"], thread_metadata)
        return cast(RunRecord, copy.deepcopy(stored))

    async def get_run(self, run_id: str) -> RunRecord | None:
        run = self._tables.runs.get(run_id)
        return cast(RunRecord, copy.deepcopy(run)) if run is not None else None

    async def start_run(self, run_id: str, thread_id: str, thread_metadata: dict[str, Any]) -> None:
        stamp = now()
        if (run := self._tables.runs.get(run_id)) is not None:
            run.update(status="running", updated_at=stamp)
        if (thread := self._tables.threads.get(thread_id)) is not None:
            thread["metadata"].update(copy.deepcopy(thread_metadata))
            thread["status"], thread["error"], thread["updated_at"] = "busy", None, stamp

    async def finish_run(
        self,
        run_id: str,
        thread_id: str,
        run_status: str,
        thread_status: str,
        values: Any | None = None,
        interrupts: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        stamp = now()
        if (run := self._tables.runs.get(run_id)) is not None:
            run.update(status=run_status, error=error, updated_at=stamp)
        if (thread := self._tables.threads.get(thread_id)) is not None:
            thread["status"], thread["error"], thread["updated_at"] = thread_status, error, stamp
            if values is not None:
                thread["values"] = values
            if interrupts is not None:
                thread["interrupts"] = interrupts

    async def list_runs(self, thread_id: str, limit: int, offset: int, status: str | None) -> list[RunRecord]:
        runs = [
            run
            for run in self._tables.runs.values()
            if run["thread_id"] == thread_id and (status is None or run["status"] == status)
        ]
        runs.sort(key=lambda run: run["created_at"], reverse=True)
        return cast(list[RunRecord], copy.deepcopy(runs[offset : offset + limit]))

    async def delete_run(self, run_id: str) -> bool:
        return self._tables.runs.pop(run_id, None) is not None

    async def recover(self) -> int:
        return 0  # a new process starts with empty dictionaries


class PostgresRunRepository(PostgresRecords, RunRepository):
    """`agent_server.runs` (and the thread status that goes with each run), on the shared pool."""

    async def create_run(self, run: NewRun, thread_metadata: dict[str, Any] | None = None) -> RunRecord | None:
        params = (
            run["run_id"],
            run["thread_id"],
            run["assistant_id"],
            run["status"] if thread_metadata is None else "running",
            Jsonb(run["metadata"]),
            Jsonb(run["kwargs"]),
            run["multitask_strategy"],
        )
        try:
            if thread_metadata is None:
                return cast(RunRecord | None, await self.one(INSERT_RUN, params))
            started = (Jsonb(thread_metadata), run["thread_id"], *params)
            return cast(RunRecord | None, await self.one(INSERT_STARTED_RUN, started))
        except psycopg.errors.ForeignKeyViolation:
            return None  # no such thread

    async def get_run(self, run_id: str) -> RunRecord | None:
        return cast(RunRecord | None, await self.one(SELECT_RUN, (run_id,)))

    async def start_run(self, run_id: str, thread_id: str, thread_metadata: dict[str, Any]) -> None:
        await self.execute(START_RUN, (run_id, Jsonb(thread_metadata), thread_id))

    async def finish_run(
        self,
        run_id: str,
        thread_id: str,
        run_status: str,
        thread_status: str,
        values: Any | None = None,
        interrupts: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        await self.execute(
            FINISH_RUN,
            (
                run_status,
                error,
                run_id,
                thread_status,
                Jsonb(values) if values is not None else None,
                Jsonb(interrupts) if interrupts is not None else None,
                error,
                thread_id,
            ),
        )

    async def list_runs(self, thread_id: str, limit: int, offset: int, status: str | None) -> list[RunRecord]:
        return cast(list[RunRecord], await self.all(SELECT_THREAD_RUNS, (thread_id, status, status, limit, offset)))

    async def delete_run(self, run_id: str) -> bool:
        return await self.execute(DELETE_RUN, (run_id,)) > 0

    async def recover(self) -> int:
        runs = await self.execute(FAIL_ORPHANED_RUNS, (ORPHANED_RUN_ERROR,))
        await self.execute(RESET_BUSY_THREADS, (ORPHANED_RUN_ERROR,))
        return runs
