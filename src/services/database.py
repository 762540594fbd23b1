"""The Postgres connection pool resource and the schema set-up that runs under one lock."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool

from src.settings import redact

logger = logging.getLogger(__name__)

APPLICATION_NAME = "agent-server"

PING = "SELECT 1"


# The pool hands out connections whose rows are dicts, as LangGraph's saver and store need.
Connection = psycopg.AsyncConnection[DictRow]
Pool = AsyncConnectionPool[Connection]


class DatabaseUnavailable(Exception):
    """The configured database cannot be used; the message is one line for the log."""


def one_line(exc: BaseException) -> str:
    """Postgres's own reason, on one line (libpq splits messages over several), without any password."""
    text = str(exc).strip() or type(exc).__name__
    return redact(re.sub(r"\s+", " ", text))


async def probe(url: str, timeout: float) -> None:
    """Connect once, fast, so that a wrong address or password fails before the pool opens.

    A pool would retry for `pool_timeout` seconds and hide the reason; a refused port,
    a wrong password, a missing database or role all answer at once here.
    """
    try:
        async with asyncio.timeout(timeout):
            conn = await psycopg.AsyncConnection.connect(
                url, connect_timeout=max(2, int(timeout + 0.999)), application_name=APPLICATION_NAME
            )
    except TimeoutError:
        raise DatabaseUnavailable(
            f"cannot connect to {redact(url)}: no answer within {timeout:g} s "
            "(DATABASE_CONNECT_TIMEOUT); is the host reachable?"
        ) from None
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"cannot connect to {redact(url)}: {one_line(exc)}") from None
    await conn.close()


class IdleCheck:
    """The pool's `check` and `reset` callbacks: ping a connection only after it sat idle.

    The stock `AsyncConnectionPool.check_connection` pings on every checkout, and
    with `prepare_threshold=0` psycopg prepares its empty query each time: two round
    trips per checkout, and a run checks out about twenty times (measured: 40% of the
    statements the server sent under load). A connection handed back moments ago has
    just answered, so it goes out as it is; one idle `idle` seconds or more, or never
    returned yet, is checked with the stock check, and the pool replaces it if that
    fails. A connection that breaks within `idle` seconds fails the one query that
    meets it, and the pool discards it when it comes back.
    """

    def __init__(self, idle: float) -> None:
        if idle < 0:
            raise ValueError(f"idle must be >= 0 seconds, got {idle!r}")
        self.idle = idle
        self._returned: weakref.WeakKeyDictionary[psycopg.AsyncConnection[DictRow], float] = weakref.WeakKeyDictionary()

    async def check(self, conn: psycopg.AsyncConnection[DictRow]) -> None:
        returned = self._returned.pop(conn, None)
        if returned is None or time.monotonic() - returned >= self.idle:
            await AsyncConnectionPool.check_connection(conn)

    async def reset(self, conn: psycopg.AsyncConnection[DictRow]) -> None:
        # Called by the pool for every connection that comes back in a usable state.
        self._returned[conn] = time.monotonic()


def json_dumps(value: object) -> bytes:
    """JSON for Json/Jsonb parameters (checkpoints, metadata, run values): orjson, several
    times faster than the stdlib's `json.dumps` that psycopg uses by default."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # What orjson refuses (integers beyond 64 bits, ...) gets json's answer, error included.
        return json.dumps(value).encode()


def json_loads(data: str | bytes) -> object:
    """Parse json/jsonb columns with orjson; json takes what orjson refuses (huge integers)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


async def configure_connection(conn: psycopg.AsyncConnection[DictRow]) -> None:
    # Per connection, not psycopg's global default: other code in the process keeps its own.
    set_json_dumps(json_dumps, conn)
    set_json_loads(json_loads, conn)


def create_pool(
    url: str,
    min_size: int,
    max_size: int,
    timeout: float,
    check_idle: float = 1.0,
    application_name: str = APPLICATION_NAME,
) -> Pool:
    """The server's pool, not yet open: dict rows, autocommit, as LangGraph's saver and store need."""
    idle_check = IdleCheck(check_idle)
    return AsyncConnectionPool(
        url,
        connection_class=psycopg.AsyncConnection[DictRow],
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            "application_name": application_name,
        },
        configure=configure_connection,
        check=idle_check.check,
        reset=idle_check.reset,
        name=application_name,
    )


@asynccontextmanager
async def opened_pool(
    url: str, min_size: int, max_size: int, timeout: float, connect_timeout: float, check_idle: float = 1.0
) -> AsyncIterator[Pool]:
    """The server's pool, open after one fast probe connection; closed on exit."""
    await probe(url, connect_timeout)
    pool = create_pool(url, min_size, max_size, timeout, check_idle)
    try:
        await pool.open(wait=True, timeout=timeout)
    except Exception as exc:
        await pool.close()
        raise DatabaseUnavailable(f"cannot open a pool to {redact(url)}: {one_line(exc)}") from None
    logger.info("persistence: postgres %s (pool %d-%d)", describe_url(url), min_size, max_size)
    try:
        yield pool
    finally:
        await pool.close()
        logger.info("database pool closed")


Params = Sequence[Any] | Mapping[str, Any]


class PostgresRecords:
    """Base of the Postgres repositories: one pooled checkout per statement, dict rows."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def one(self, query: str, params: Params) -> DictRow | None:
        async with self._pool.connection() as conn:
            return await (await conn.execute(query, params)).fetchone()

    async def all(self, query: str, params: Params) -> list[DictRow]:
        async with self._pool.connection() as conn:
            return await (await conn.execute(query, params)).fetchall()

    async def execute(self, query: str, params: Params) -> int:
        """Run a statement; return how many rows it touched."""
        async with self._pool.connection() as conn:
            return (await conn.execute(query, params)).rowcount


def describe_url(url: str) -> str:
    """host:port/dbname of a connection string (URL or key=value), without user or password."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host, port = info.get("host") or "localhost", info.get("port") or 5432
    return f"{host}:{port}/{info.get('dbname') or info.get('user') or ''}"
