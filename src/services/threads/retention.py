"""Thread TTL: langgraph.json's `checkpointer.ttl`, as the LangGraph API documents it.

A thread not updated for `default_ttl` minutes (creation, a run, a state update or a
metadata change update it), that is not busy and has no run pending or running, expires.
Every `sweep_interval_minutes` at most `sweep_limit` expired threads are handled:
`delete` removes each with its runs, crons and checkpoints; `keep_latest` keeps the thread
and its latest checkpoint and deletes the older ones. Several servers may sweep at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from src.services.database import PostgresRecords, one_line, unavailable_cause
from src.services.persistence import Checkpointer, MemorySaver
from src.services.threads.repository import MemoryTables, now
from src.services.threads.sql import DELETE_EXPIRED_THREADS, SELECT_PRUNABLE_THREADS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThreadTTL:
    strategy: str  # "delete" or "keep_latest"
    default_ttl: float  # minutes
    sweep_interval_minutes: float
    sweep_limit: int


class ThreadRetention(ABC):
    """Finds expired threads (see the module docstring) where thread records live."""

    @abstractmethod
    async def delete_expired(self, idle_seconds: float, limit: int) -> list[str]:
        """Delete the records of up to `limit` expired threads (with their runs); return their ids."""

    @abstractmethod
    async def prunable(self, idle_seconds: float, limit: int) -> list[str]:
        """Up to `limit` expired threads that have more than one root checkpoint."""


class MemoryThreadRetention(ThreadRetention):
    def __init__(self, tables: MemoryTables, checkpointer: Checkpointer) -> None:
        self._tables = tables
        self._checkpointer = checkpointer

    def _expired(self, idle_seconds: float, limit: int) -> list[str]:
        cutoff = now() - timedelta(seconds=idle_seconds)
        active = {run["thread_id"] for run in self._tables.runs.values() if run["status"] in ("pending", "running")}
        threads = sorted(self._tables.threads.values(), key=lambda thread: thread["updated_at"])
        return [
            thread["thread_id"]
            for thread in threads
            if thread["updated_at"] < cutoff and thread["status"] != "busy" and thread["thread_id"] not in active
        ][: limit if limit else None]

    async def delete_expired(self, idle_seconds: float, limit: int) -> list[str]:
        expired = self._expired(idle_seconds, limit)
        for thread_id in expired:
            self._tables.threads.pop(thread_id, None)
            for run_id in [r for r, run in self._tables.runs.items() if run["thread_id"] == thread_id]:
                del self._tables.runs[run_id]
        return expired

    async def prunable(self, idle_seconds: float, limit: int) -> list[str]:
        storage = self._checkpointer.storage if isinstance(self._checkpointer, MemorySaver) else {}
        return [
            thread_id for thread_id in self._expired(idle_seconds, 0) if len(storage.get(thread_id, {}).get("", {})) > 1
        ][:limit]


class PostgresThreadRetention(PostgresRecords, ThreadRetention):
    async def delete_expired(self, idle_seconds: float, limit: int) -> list[str]:
        rows = await self.all(DELETE_EXPIRED_THREADS, {"seconds": idle_seconds, "limit": limit})
        return [row["thread_id"] for row in rows]

    async def prunable(self, idle_seconds: float, limit: int) -> list[str]:
        rows = await self.all(SELECT_PRUNABLE_THREADS, {"seconds": idle_seconds, "limit": limit})
        return [row["thread_id"] for row in rows]


class ThreadSweeper:
    def __init__(self, retention: ThreadRetention, checkpointer: Checkpointer, ttl: ThreadTTL) -> None:
        self._retention = retention
        self._checkpointer = checkpointer
        self._ttl = ttl

    async def sweep(self) -> int:
        """Handle the expired threads once; return how many."""
        idle, limit = self._ttl.default_ttl * 60, self._ttl.sweep_limit
        if self._ttl.strategy == "delete":
            expired = await self._retention.delete_expired(idle, limit)
            for thread_id in expired:
                await self._checkpointer.adelete_thread(thread_id)
            return len(expired)
        pruned = 0
        for thread_id in await self._retention.prunable(idle, limit):
            try:
                await self._checkpointer.aprune([thread_id], strategy="keep_latest")
                pruned += 1
            except NotImplementedError as exc:  # LangGraph cannot prune threads with delta channels
                logger.warning("thread TTL: thread %s cannot be pruned: %s", thread_id, exc)
            except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
                # Another server prunes it at this moment: this one leaves it to that one.
                logger.debug("thread TTL: thread %s is being pruned elsewhere", thread_id)
        return pruned

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self._ttl.sweep_interval_minutes * 60)
            try:
                handled = await self.sweep()
            except Exception as exc:
                if unavailable_cause(exc) is None:
                    logger.exception("thread TTL sweep failed")
                else:  # the next sweep tries again
                    logger.warning("thread TTL sweep skipped: %s", one_line(exc))
                continue
            if handled:
                verb = "deleted" if self._ttl.strategy == "delete" else "pruned to their latest checkpoint"
                logger.info("thread TTL: %d expired thread(s) %s", handled, verb)


async def init_thread_sweeper(
    retention: ThreadRetention, checkpointer: Checkpointer, ttl: Mapping[str, Any]
) -> AsyncIterator[ThreadSweeper]:
    """Resource: the sweeper task (langgraph.json sets checkpointer.ttl with a default_ttl)."""
    sweeper = ThreadSweeper(
        retention,
        checkpointer,
        ThreadTTL(ttl["strategy"], ttl["default_ttl"], ttl["sweep_interval_minutes"], ttl["sweep_limit"]),
    )
    task = asyncio.create_task(sweeper.run_forever(), name="thread TTL sweeper")
    try:
        yield sweeper
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
