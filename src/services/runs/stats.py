"""How many runs are pending and running, for GET /metrics: read from where run records live,
so that on Postgres the figures cover every server process."""

from __future__ import annotations

from abc import ABC, abstractmethod

from src.services.database import PostgresRecords
from src.services.runs.sql import COUNT_ACTIVE_RUNS
from src.services.threads.repository import MemoryTables

ACTIVE_STATUSES = ("pending", "running")


class RunCounter(ABC):
    @abstractmethod
    async def active_runs(self) -> dict[str, int]:
        """{"pending": n, "running": m}."""


class MemoryRunCounter(RunCounter):
    def __init__(self, tables: MemoryTables) -> None:
        self._tables = tables

    async def active_runs(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIVE_STATUSES, 0)
        for run in self._tables.runs.values():
            if run["status"] in counts:
                counts[run["status"]] += 1
        return counts


class PostgresRunCounter(PostgresRecords, RunCounter):
    async def active_runs(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIVE_STATUSES, 0)
        for row in await self.all(COUNT_ACTIVE_RUNS, ()):
            counts[row["status"]] = int(row["count"])
        return counts
