"""Where thread records live: in memory, or in `agent_server.threads` (statements in sql.py)."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from psycopg.types.json import Jsonb

from src.services.auth.filters import Visibility
from src.services.database import PostgresRecords
from src.services.threads.models import ThreadFilter, ThreadRecord
from src.services.threads.sql import (
    COUNT_THREADS,
    DELETE_THREAD,
    INSERT_THREAD,
    MERGE_THREAD_METADATA,
    SEARCH_THREADS,
    SELECT_THREAD,
    SELECT_VISIBLE_THREAD,
    THREAD_EXISTS,
    UPDATE_THREAD_STATE,
)
from src.services.validation import json_contains


def now() -> datetime:
    return datetime.now(UTC)


class ThreadRepository(ABC):
    """Thread records. Implementations must be safe for concurrent coroutines."""

    @abstractmethod
    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> ThreadRecord | None:
        """Insert a thread; None when the id is taken."""

    @abstractmethod
    async def get_thread(self, thread_id: str, visible: Visibility | None = None) -> ThreadRecord | None:
        """The thread; None when there is none, or when `visible` (the caller's auth filter) hides it."""

    @abstractmethod
    async def thread_exists(self, thread_id: str) -> bool: ...

    @abstractmethod
    async def set_thread_state(
        self,
        thread_id: str,
        status: str,
        values: Any | None = None,
        interrupts: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Set status and error; replace values/interrupts unless given as None."""

    @abstractmethod
    async def merge_thread_metadata(self, thread_id: str, metadata: dict[str, Any]) -> None: ...

    @abstractmethod
    async def search_threads(
        self, where: ThreadFilter, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[ThreadRecord]: ...

    @abstractmethod
    async def count_threads(self, where: ThreadFilter) -> int: ...

    @abstractmethod
    async def delete_thread(self, thread_id: str) -> bool:
        """Delete a thread and its run records; False when it did not exist."""


@dataclass
class MemoryTables:
    """The in-memory backend's tables, shared by its thread and run repositories."""

    threads: dict[str, ThreadRecord] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Ids of the runs that may still be pending or running: each run goes in when it is
    # created and out when a look finds it ended or gone (MemoryRunRepository._unfinished), so
    # finding a thread's active runs or the next runnable one never walks every run kept.
    unfinished: set[str] = field(default_factory=set)


def matches(where: ThreadFilter, thread: ThreadRecord) -> bool:
    return (
        (where.metadata is None or json_contains(thread["metadata"], where.metadata))
        and (where.values is None or json_contains(thread["values"] or {}, where.values))
        and (where.status is None or thread["status"] == where.status)
        and (where.ids is None or thread["thread_id"] in where.ids)
        and (where.visible is None or where.visible.matches(thread["metadata"]))
    )


class MemoryThreadRepository(ThreadRepository):
    """In-process dictionaries; coroutines on one loop need no lock between awaits."""

    def __init__(self, tables: MemoryTables) -> None:
        self._tables = tables

    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> ThreadRecord | None:
        if thread_id in self._tables.threads:
            return None
        stamp = now()
        thread: ThreadRecord = {
            "thread_id": thread_id,
            "created_at": stamp,
            "updated_at": stamp,
            "metadata": copy.deepcopy(metadata),
            "status": "idle",
            "values": None,
            "interrupts": {},
            "error": None,
        }
        self._tables.threads[thread_id] = thread
        return copy.deepcopy(thread)

    async def get_thread(self, thread_id: str, visible: Visibility | None = None) -> ThreadRecord | None:
        thread = self._tables.threads.get(thread_id)
        if thread is None or (visible is not None and not visible.matches(thread["metadata"])):
            return None
        return copy.deepcopy(thread)

    async def thread_exists(self, thread_id: str) -> bool:
        return thread_id in self._tables.threads

    async def set_thread_state(
        self,
        thread_id: str,
        status: str,
        values: Any | None = None,
        interrupts: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        thread = self._tables.threads.get(thread_id)
        if thread is None:
            return
        thread["status"], thread["error"], thread["updated_at"] = status, error, now()
        if values is not None:
            thread["values"] = copy.deepcopy(values)
        if interrupts is not None:
            thread["interrupts"] = copy.deepcopy(interrupts)

    async def merge_thread_metadata(self, thread_id: str, metadata: dict[str, Any]) -> None:
        thread = self._tables.threads.get(thread_id)
        if thread is not None:
            thread["metadata"].update(copy.deepcopy(metadata))
            thread["updated_at"] = now()

    async def search_threads(
        self, where: ThreadFilter, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[ThreadRecord]:
        found = [thread for thread in self._tables.threads.values() if matches(where, thread)]
        found.sort(key=lambda thread: (cast(dict[str, Any], thread)[sort_by], thread["thread_id"]))
        if sort_order == "desc":
            found.reverse()
        return copy.deepcopy(found[offset : offset + limit])

    async def count_threads(self, where: ThreadFilter) -> int:
        return sum(1 for thread in self._tables.threads.values() if matches(where, thread))

    async def delete_thread(self, thread_id: str) -> bool:
        runs = self._tables.runs
        for run_id in [r for r, run in runs.items() if run["thread_id"] == thread_id]:
            del runs[run_id]
        return self._tables.threads.pop(thread_id, None) is not None


def filter_params(where: ThreadFilter) -> dict[str, Any]:
    return {
        "metadata": Jsonb(where.metadata) if where.metadata is not None else None,
        "values": Jsonb(where.values) if where.values is not None else None,
        "status": where.status,
        "ids": where.ids,
        **visible_params(where.visible),
    }


def visible_params(visible: Visibility | None) -> dict[str, Any]:
    """The parameters of THREAD_VISIBLE: the caller's auth filter and what it implies (auth/sql.py)."""
    if visible is None:
        return {"visible": None, "visible_contains": None}
    contains = [Jsonb(document) for document in visible.containments()]
    return {"visible": Jsonb(visible.as_json()), "visible_contains": contains}


class PostgresThreadRepository(PostgresRecords, ThreadRepository):
    """`agent_server.threads`, on the shared pool."""

    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> ThreadRecord | None:
        return cast(ThreadRecord | None, await self.one(INSERT_THREAD, (thread_id, Jsonb(metadata))))

    async def get_thread(self, thread_id: str, visible: Visibility | None = None) -> ThreadRecord | None:
        if visible is None:
            return cast(ThreadRecord | None, await self.one(SELECT_THREAD, (thread_id,)))
        params = {"thread_id": thread_id, **visible_params(visible)}
        return cast(ThreadRecord | None, await self.one(SELECT_VISIBLE_THREAD, params))

    async def thread_exists(self, thread_id: str) -> bool:
        return await self.one(THREAD_EXISTS, (thread_id,)) is not None

    async def set_thread_state(
        self,
        thread_id: str,
        status: str,
        values: Any | None = None,
        interrupts: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        await self.execute(
            UPDATE_THREAD_STATE,
            (
                status,
                Jsonb(values) if values is not None else None,
                Jsonb(interrupts) if interrupts is not None else None,
                error,
                thread_id,
            ),
        )

    async def merge_thread_metadata(self, thread_id: str, metadata: dict[str, Any]) -> None:
        await self.execute(MERGE_THREAD_METADATA, (Jsonb(metadata), thread_id))

    async def search_threads(
        self, where: ThreadFilter, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[ThreadRecord]:
        params = {**filter_params(where), "limit": limit, "offset": offset}
        return cast(list[ThreadRecord], await self.all(SEARCH_THREADS[(sort_by, sort_order)], params))

    async def count_threads(self, where: ThreadFilter) -> int:
        row = await self.one(COUNT_THREADS, filter_params(where))
        return int(row["count"]) if row else 0

    async def delete_thread(self, thread_id: str) -> bool:
        return await self.execute(DELETE_THREAD, (thread_id,)) > 0
