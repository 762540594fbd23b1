"""Where crons live: in memory, or in `agent_server.crons` (statements in sql.py).

`claim_due` is the scheduler's step: the crons due now, each with its `next_run_date`
advanced in the same step (one transaction on Postgres, with rows other servers hold
skipped), so that a firing is claimed by exactly one server.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

import psycopg
from psycopg.types.json import Jsonb

from src.services.auth.filters import Visibility
from src.services.crons.models import CronFilter, CronRecord, NewCron
from src.services.crons.sql import (
    ADVANCE_CRON,
    COUNT_CRONS,
    DELETE_CRON,
    INSERT_CRON,
    SEARCH_CRONS,
    SELECT_CRON,
    SELECT_CRON_FOR_UPDATE,
    SELECT_DUE_CRONS,
    SELECT_NEXT_DUE,
    UPDATE_CRON,
)
from src.services.database import PostgresRecords
from src.services.threads.repository import MemoryTables, now, visible_params
from src.services.validation import json_contains

# What a cron becomes: given the stored record, the record to store (only mutable fields change).
CronChange = Callable[[CronRecord], CronRecord]
# When a claimed cron fires next: given the cron and the time it was claimed at.
NextRun = Callable[[CronRecord, datetime], datetime]


class CronRepository(ABC):
    """Cron records. Implementations must be safe for concurrent coroutines.

    `visible` (and `CronFilter.visible`) is the caller's auth filter on a cron's metadata: a cron
    it hides is not there (None, False, not counted)."""

    @abstractmethod
    async def create_cron(self, cron: NewCron) -> CronRecord | None:
        """Insert a cron; None when its thread does not exist."""

    @abstractmethod
    async def get_cron(self, cron_id: str, visible: Visibility | None = None) -> CronRecord | None: ...

    @abstractmethod
    async def update_cron(
        self, cron_id: str, change: CronChange, visible: Visibility | None = None
    ) -> CronRecord | None:
        """Apply `change` to the cron as stored, atomically; None when there is no such cron."""

    @abstractmethod
    async def delete_cron(self, cron_id: str, visible: Visibility | None = None) -> bool: ...

    @abstractmethod
    async def search_crons(
        self, where: CronFilter, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[CronRecord]: ...

    @abstractmethod
    async def count_crons(self, where: CronFilter) -> int: ...

    @abstractmethod
    async def claim_due(self, at: datetime, limit: int, next_run: NextRun) -> list[CronRecord]:
        """Up to `limit` crons due at `at` (enabled, not past their end), each given its next
        run date; return them as they were before."""

    @abstractmethod
    async def next_due(self, at: datetime) -> datetime | None:
        """The earliest next run date of the crons that can still fire."""


def _matches(where: CronFilter, cron: CronRecord) -> bool:
    return (
        (where.assistant_id is None or cron["assistant_id"] == where.assistant_id)
        and (where.thread_id is None or cron["thread_id"] == where.thread_id)
        and (where.enabled is None or cron["enabled"] == where.enabled)
        and (where.metadata is None or json_contains(cron["metadata"], where.metadata))
        and _visible(where.visible, cron)
    )


def _visible(visible: Visibility | None, cron: CronRecord) -> bool:
    return visible is None or visible.matches(cron["metadata"])


def _can_fire(cron: CronRecord, at: datetime) -> bool:
    return cron["enabled"] and (cron["end_time"] is None or cron["end_time"] > at)


class MemoryCronRepository(CronRepository):
    """Crons in a dictionary; a cron whose thread was deleted goes with it, as on Postgres."""

    def __init__(self, tables: MemoryTables) -> None:
        self._tables = tables
        self._crons: dict[str, CronRecord] = {}

    def _live(self) -> dict[str, CronRecord]:
        for cron_id in [
            cron_id
            for cron_id, cron in self._crons.items()
            if cron["thread_id"] is not None and cron["thread_id"] not in self._tables.threads
        ]:
            del self._crons[cron_id]
        return self._crons

    async def create_cron(self, cron: NewCron) -> CronRecord | None:
        if cron["thread_id"] is not None and cron["thread_id"] not in self._tables.threads:
            return None
        stamp = now()
        stored = cast(CronRecord, {**copy.deepcopy(cron), "created_at": stamp, "updated_at": stamp})
        self._live()[cron["cron_id"]] = stored
        return copy.deepcopy(stored)

    async def get_cron(self, cron_id: str, visible: Visibility | None = None) -> CronRecord | None:
        cron = self._live().get(cron_id)
        return copy.deepcopy(cron) if cron is not None and _visible(visible, cron) else None

    async def update_cron(
        self, cron_id: str, change: CronChange, visible: Visibility | None = None
    ) -> CronRecord | None:
        cron = self._live().get(cron_id)
        if cron is None or not _visible(visible, cron):
            return None
        changed = change(copy.deepcopy(cron))
        changed["updated_at"] = now()
        self._crons[cron_id] = changed
        return copy.deepcopy(changed)

    async def delete_cron(self, cron_id: str, visible: Visibility | None = None) -> bool:
        cron = self._live().get(cron_id)
        if cron is None or not _visible(visible, cron):
            return False
        del self._crons[cron_id]
        return True

    async def search_crons(
        self, where: CronFilter, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[CronRecord]:
        found = sorted((c for c in self._live().values() if _matches(where, c)), key=lambda c: c["cron_id"])
        # As Postgres orders: nulls after every value ascending, before them descending.
        descending = sort_order == "desc"
        present = sorted((c for c in found if c[sort_by] is not None), key=lambda c: c[sort_by], reverse=descending)  # type: ignore[literal-required]
        missing = [c for c in found if c[sort_by] is None]  # type: ignore[literal-required]
        ordered = missing + present if descending else present + missing
        return copy.deepcopy(ordered[offset : offset + limit])

    async def count_crons(self, where: CronFilter) -> int:
        return sum(1 for cron in self._live().values() if _matches(where, cron))

    async def claim_due(self, at: datetime, limit: int, next_run: NextRun) -> list[CronRecord]:
        due = sorted(
            (c for c in self._live().values() if _can_fire(c, at) and c["next_run_date"] <= at),
            key=lambda c: c["next_run_date"],
        )[:limit]
        claimed = [copy.deepcopy(cron) for cron in due]
        for cron in due:  # no await between the check and the update: one claim at a time
            cron["next_run_date"] = next_run(cron, at)
        return claimed

    async def next_due(self, at: datetime) -> datetime | None:
        dates = [c["next_run_date"] for c in self._live().values() if _can_fire(c, at)]
        return min(dates) if dates else None


def _filter_params(where: CronFilter) -> dict[str, Any]:
    return {
        "assistant_id": where.assistant_id,
        "thread_id": where.thread_id,
        "enabled": where.enabled,
        "metadata": Jsonb(where.metadata) if where.metadata is not None else None,
        **visible_params(where.visible),
    }


class PostgresCronRepository(PostgresRecords, CronRepository):
    """`agent_server.crons`, on the shared pool."""

    async def create_cron(self, cron: NewCron) -> CronRecord | None:
        params = (
            cron["cron_id"],
            cron["assistant_id"],
            cron["thread_id"],
            cron["user_id"],
            cron["schedule"],
            cron["timezone"],
            Jsonb(cron["payload"]),
            Jsonb(cron["metadata"]),
            cron["on_run_completed"],
            cron["enabled"],
            cron["end_time"],
            cron["next_run_date"],
            Jsonb(cron["caller"]) if cron["caller"] is not None else None,
        )
        try:
            return cast(CronRecord | None, await self.one(INSERT_CRON, params))
        except psycopg.errors.ForeignKeyViolation:
            return None  # no such thread

    async def get_cron(self, cron_id: str, visible: Visibility | None = None) -> CronRecord | None:
        return cast(CronRecord | None, await self.one(SELECT_CRON, {"cron_id": cron_id, **visible_params(visible)}))

    async def update_cron(
        self, cron_id: str, change: CronChange, visible: Visibility | None = None
    ) -> CronRecord | None:
        where = {"cron_id": cron_id, **visible_params(visible)}
        async with self._pool.connection() as conn, conn.transaction():
            row = await (await conn.execute(SELECT_CRON_FOR_UPDATE, where)).fetchone()
            if row is None:
                return None
            cron = change(cast(CronRecord, row))
            params = (
                cron["schedule"],
                cron["timezone"],
                Jsonb(cron["payload"]),
                Jsonb(cron["metadata"]),
                cron["on_run_completed"],
                cron["enabled"],
                cron["end_time"],
                cron["next_run_date"],
                cron_id,
            )
            return cast(CronRecord | None, await (await conn.execute(UPDATE_CRON, params)).fetchone())

    async def delete_cron(self, cron_id: str, visible: Visibility | None = None) -> bool:
        return await self.execute(DELETE_CRON, {"cron_id": cron_id, **visible_params(visible)}) > 0

    async def search_crons(
        self, where: CronFilter, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[CronRecord]:
        params = {**_filter_params(where), "limit": limit, "offset": offset}
        return cast(list[CronRecord], await self.all(SEARCH_CRONS[(sort_by, sort_order)], params))

    async def count_crons(self, where: CronFilter) -> int:
        row = await self.one(COUNT_CRONS, _filter_params(where))
        return int(row["count"]) if row else 0

    async def claim_due(self, at: datetime, limit: int, next_run: NextRun) -> list[CronRecord]:
        async with self._pool.connection() as conn, conn.transaction():
            rows = await (await conn.execute(SELECT_DUE_CRONS, {"now": at, "limit": limit})).fetchall()
            claimed = cast(list[CronRecord], rows)
            for cron in claimed:
                await conn.execute(ADVANCE_CRON, (next_run(cron, at), cron["cron_id"]))
        return claimed

    async def next_due(self, at: datetime) -> datetime | None:
        row = await self.one(SELECT_NEXT_DUE, (at,))
        return cast(datetime | None, row["next_run_date"]) if row else None
