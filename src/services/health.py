"""Health and server information: what /health, /ok and /info report."""

from __future__ import annotations

import asyncio
from typing import Any

from src import __version__
from src.services.database import PING, Pool, one_line
from src.services.graphs import GraphRegistry

POOL_STATS = ("pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting")


class HealthService:
    def __init__(self, pool: Pool | None, graphs: GraphRegistry, timeout: float = 2.0) -> None:
        self._pool = pool
        self._graphs = graphs
        self._timeout = timeout

    @property
    def persistence(self) -> str:
        return "memory" if self._pool is None else "postgres"

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, report). Postgres is asked for a round trip, bounded by `timeout`."""
        report: dict[str, Any] = {"status": "ok", "persistence": self.persistence}
        if self._pool is None:
            return True, report
        stats = self._pool.get_stats()
        report["pool"] = {key: stats.get(key, 0) for key in POOL_STATS}
        try:
            async with asyncio.timeout(self._timeout):
                async with self._pool.connection(timeout=self._timeout) as conn:
                    await conn.execute(PING)
        except TimeoutError:
            reason = f"postgres did not answer within {self._timeout:g} s"
        except Exception as exc:
            reason = f"postgres is unavailable: {one_line(exc)}"
        else:
            return True, report
        return False, {**report, "status": "unavailable", "reason": reason}

    def info(self) -> dict[str, Any]:
        postgres = self._pool is not None
        return {
            "version": __version__,
            "persistence": {
                "backend": self.persistence,
                "capabilities": {
                    "durable": postgres,
                    "checkpointer": "postgres" if postgres else "memory",
                    "store": "postgres" if postgres else "memory",
                    "row_level_security": postgres,
                },
            },
            "graphs": self._graphs.ids,
            "flags": {"assistants": True, "crons": False, "langsmith": False},
        }
