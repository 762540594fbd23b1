"""Health and server information: what /health, /ok and /info report."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from src import __version__
from src.services.database import PING, Pool, one_line
from src.services.graphs import GraphRegistry

POOL_STATS = ("pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting")


class Backend(Protocol):
    """What health and info need to know of the persistence backend."""

    name: str
    durable: bool

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details to report)."""


class MemoryBackend:
    name = "memory"
    durable = False

    async def check(self) -> tuple[bool, dict[str, Any]]:
        return True, {}


class PostgresBackend:
    """Postgres is asked for a round trip, bounded by `timeout`; the pool's figures are reported."""

    name = "postgres"
    durable = True

    def __init__(self, pool: Pool, timeout: float = 2.0) -> None:
        self._pool = pool
        self._timeout = timeout

    async def check(self) -> tuple[bool, dict[str, Any]]:
        stats = self._pool.get_stats()
        report: dict[str, Any] = {"pool": {key: stats.get(key, 0) for key in POOL_STATS}}
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


class HealthService:
    def __init__(self, backend: Backend, graphs: GraphRegistry, auth: str = "off") -> None:
        self._backend = backend
        self._graphs = graphs
        self._auth = auth  # which Auth object runs: off, custom (auth.path) or builtin

    @property
    def persistence(self) -> str:
        return self._backend.name

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, report)."""
        healthy, details = await self._backend.check()
        return healthy, {"status": "ok", "persistence": self.persistence, **details}

    def info(self) -> dict[str, Any]:
        durable = self._backend.durable
        return {
            "version": __version__,
            "persistence": {
                "backend": self.persistence,
                "capabilities": {
                    "durable": durable,
                    "checkpointer": self.persistence,
                    "store": self.persistence,
                    "row_level_security": durable,
                },
            },
            "graphs": self._graphs.ids,
            # Off: anyone who reaches the port can read and change everything (README "Auth").
            "auth": {"enabled": self._auth != "off", "module": self._auth},
            "flags": {"assistants": True, "crons": True, "langsmith": False},
        }
