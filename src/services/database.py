"""The Postgres connection pool: its checks, outage watch, JSON codecs, and the repositories' base."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import select
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import orjson
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from src.settings import redact

logger = logging.getLogger(__name__)

APPLICATION_NAME = "agent-server"

PING = "SELECT 1"


# TCP settings of every pooled connection, unless the connection string sets its own. libpq
# turns keepalives on but leaves their timing to the kernel (first probe after 2 hours), and
# a statement sent to a host that vanished waits for TCP's retransmissions (about 15 minutes).
# Here an idle connection to a dead peer is noticed after 5 + 3 x 2 s, and a connection whose
# data stays unacknowledged for the pool timeout (tcp_user_timeout, set in create_pool) is dropped.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
# libpq reads connect_timeout as whole seconds and takes anything below 2 as 2.
MIN_CONNECT_TIMEOUT = 2
# While the database does not answer, it is tried this often (seconds): the longest a
# recovered database waits to be noticed.
PROBE_INTERVAL = 0.5
# How long psycopg_pool retries to replace one lost connection. Its default (5 minutes, with
# a back-off that doubles from 1 s) left recovered databases unused for up to half a minute;
# the pool's outage watch (ServerPool) reconnects as soon as the database answers instead.
RECONNECT_TIMEOUT = 2.0
# SQLSTATE classes that say the database cannot serve now, not that the statement is wrong:
# connection exception, invalid authorization, insufficient resources (too many connections,
# disk full), operator intervention (shutdown, crash, recovery, statement cancelled), system error.
UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "28", "53", "57", "58"})
# psycopg's InterfaceError about a connection it can no longer use (its OperationalError says
# "the connection is closed"; some paths raise InterfaceError instead).
CONNECTION_GONE = re.compile(r"\bconnection is (?:closed|lost|in status)\b")


class DatabaseUnavailable(Exception):
    """The configured database cannot be used; the message is one line for the log."""


class DatabaseUnreachable(PoolTimeout):
    """No connection is handed out: the database did not answer the last attempt; the message says why.

    A `PoolTimeout`, so code that handles the pool's own timeout handles this one too."""


def one_line(exc: BaseException) -> str:
    """Postgres's own reason, on one line (libpq splits messages over several), without any password."""
    text = str(exc).strip() or type(exc).__name__
    return redact(re.sub(r"\s+", " ", text))


def unavailable_cause(exc: BaseException) -> BaseException | None:
    """The error in `exc` that means the database cannot be used right now, or None.

    Looks at `exc`, the errors it was raised from (`raise ... from`) and the members of an
    exception group. Such an error is the pool's (no connection in time, the database
    refused the last attempt), libpq's (refused, reset, timed out, closed) or Postgres's
    own (`UNAVAILABLE_SQLSTATE_CLASSES`: shut down, terminated, too many connections).
    Anything else, a statement's syntax or a constraint violation included, is a bug to
    report as such: None.
    """
    seen: set[int] = set()
    pending = [exc]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if _means_unavailable(error):
            return error
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        if error.__cause__ is not None:
            pending.append(error.__cause__)
    return None


def _means_unavailable(error: BaseException) -> bool:
    if isinstance(error, psycopg.errors.PipelineAborted):
        return False  # follows an earlier error in the pipeline, which is the one to judge
    if isinstance(error, psycopg.OperationalError):
        # No SQLSTATE: raised by the pool, psycopg or libpq, not by a statement Postgres ran.
        return error.sqlstate is None or error.sqlstate[:2] in UNAVAILABLE_SQLSTATE_CLASSES
    return isinstance(error, psycopg.InterfaceError) and CONNECTION_GONE.search(str(error)) is not None


def connect_timeout_seconds(timeout: float) -> int:
    """libpq's connect_timeout (whole seconds, at least 2) for a wait of `timeout` seconds."""
    return max(MIN_CONNECT_TIMEOUT, math.ceil(timeout))


async def probe(url: str, timeout: float) -> None:
    """Connect once, fast, so that a wrong address or password fails before the pool opens.

    A pool would retry for `pool_timeout` seconds and hide the reason; a refused port,
    a wrong password, a missing database or role all answer at once here.
    """
    try:
        async with asyncio.timeout(timeout):
            conn = await psycopg.AsyncConnection.connect(
                url, connect_timeout=connect_timeout_seconds(timeout), application_name=APPLICATION_NAME
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
    just answered, so it goes out as it is, unless the server sent it something in the
    meantime: an idle connection gets nothing unasked, so anything there (a terminated
    backend's last message, the end of the connection) is checked with a ping - a poll
    of the socket, no round trip, tells. One idle `idle` seconds or more, or never
    returned yet, is checked with the stock check. The pool replaces a connection
    whose check fails. A connection that breaks while in use, or whose end has not
    arrived yet, fails the one query that meets it, and the pool discards it when it
    comes back.
    """

    def __init__(self, idle: float) -> None:
        if idle < 0:
            raise ValueError(f"idle must be >= 0 seconds, got {idle!r}")
        self.idle = idle
        self._returned: weakref.WeakKeyDictionary[psycopg.AsyncConnection[DictRow], float] = weakref.WeakKeyDictionary()

    async def check(self, conn: psycopg.AsyncConnection[DictRow]) -> None:
        returned = self._returned.pop(conn, None)
        if returned is None or time.monotonic() - returned >= self.idle or has_input(conn):
            await AsyncConnectionPool.check_connection(conn)

    async def reset(self, conn: psycopg.AsyncConnection[DictRow]) -> None:
        # Called by the pool for every connection that comes back in a usable state.
        self._returned[conn] = time.monotonic()


def has_input(conn: psycopg.AsyncConnection[DictRow]) -> bool:
    """Whether the server sent anything to this idle connection (or closed it); never waits."""
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN)
    return bool(poller.poll(0))


# The pool hands out connections whose rows are dicts, as LangGraph's saver and store need.
ServerConnection = psycopg.AsyncConnection[DictRow]
Connection = ServerConnection


class ServerPool(AsyncConnectionPool[ServerConnection]):
    """psycopg's pool, plus what it does not do when the database goes away and comes back.

    Alone, psycopg_pool makes every client wait its whole `timeout` for a connection while
    the database refuses them; it sleeps 1 s, then 2, 4... between checkouts whose check
    failed, so after a restart a request can spend its whole timeout meeting dead idle
    connections; and it retries lost connections with a back-off that grows to minutes, so a
    database that is back can stay unused for a long time. Here:

    - the first sign of trouble (a connection that fails its check or comes back broken, a
      wait that times out) starts a watch that connects every `probe_interval` seconds until
      the database answers. While it does not, `getconn` raises `DatabaseUnreachable` at
      once, with the reason (`outage`); once it does, `check()` drops the dead idle
      connections and opens new ones, whatever psycopg_pool's back-off;
    - `getconn` runs the `check` callback itself: a connection that fails it is closed and
      the next one tried at once, after the watch's first attempt has told whether the
      database is gone (then the caller is answered at once) or only that connection was.

    Nothing of this costs a statement while the database is fine.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        kwargs: dict[str, Any],
        check: Callable[[ServerConnection], Awaitable[None]] | None = None,
        probe_interval: float = PROBE_INTERVAL,
        **options: Any,
    ) -> None:
        self._conninfo = conninfo
        self._connect_kwargs = kwargs
        self._connection_check = check
        self._probe_interval = probe_interval
        self._watch: asyncio.Task[None] | None = None
        self._probed: asyncio.Future[None] | None = None
        # Why the database cannot be used, while it cannot; None while it answers.
        self.outage: str | None = None
        super().__init__(conninfo, kwargs=kwargs, **options)

    async def getconn(self, timeout: float | None = None) -> ServerConnection:
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            if self.outage is not None:
                raise DatabaseUnreachable(self.outage)
            try:
                conn = await super().getconn(deadline - time.monotonic())
            except PoolTimeout as exc:
                self.suspect()
                if self.outage is not None:
                    raise DatabaseUnreachable(self.outage) from exc
                raise PoolTimeout(f"couldn't get a connection after {wait:.2f} sec") from None
            if await self._usable(conn):
                return conn
            await asyncio.wait({self.suspect()}, timeout=max(0.0, deadline - time.monotonic()))

    async def putconn(self, conn: ServerConnection) -> None:
        if conn.broken:
            self.suspect()
        await super().putconn(conn)

    async def close(self, timeout: float = 5.0) -> None:
        if self._watch is not None:
            self._watch.cancel()
            # Awaited, so that no probe connection is left open behind the closed pool.
            with suppress(asyncio.CancelledError):
                await self._watch
        await super().close(timeout)

    def suspect(self) -> asyncio.Future[None]:
        """Something failed as if the database were gone: find out, one watch at a time.

        The future is done once the watch has made its first connection attempt."""
        if self._probed is None or self._watch is None or self._watch.done():
            loop = asyncio.get_running_loop()
            self._probed = loop.create_future()
            if self.closed:
                self._probed.set_result(None)
            else:
                self._watch = loop.create_task(self._watch_outage(self._probed), name=f"{self.name} watch")
        return self._probed

    async def _usable(self, conn: ServerConnection) -> bool:
        """Run the check callback; a connection that fails it is closed and handed back to be replaced."""
        if self._connection_check is None:
            return True
        try:
            await self._connection_check(conn)
        except Exception:
            await conn.close()
            await super().putconn(conn)
            return False
        except BaseException:
            await super().putconn(conn)
            raise
        return True

    async def _watch_outage(self, probed: asyncio.Future[None]) -> None:
        began = time.monotonic()
        try:
            while True:
                try:
                    conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._connect_kwargs)
                except Exception as exc:
                    if self.outage is None:
                        logger.warning("the database is unavailable: %s", one_line(exc))
                    self.outage = one_line(exc)
                    _settle(probed)
                    await asyncio.sleep(self._probe_interval)
                    continue
                await conn.close()
                break
        finally:
            _settle(probed)
        if self.outage is not None:
            logger.info("the database answers again, after %.1f s", time.monotonic() - began)
            self.outage = None
        # Connections that died meanwhile are dropped now, and new ones opened now.
        await self.check()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


Pool = ServerPool


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
    connect_timeout: float = 5.0,
) -> Pool:
    """The server's pool, not yet open: dict rows, autocommit, as LangGraph's saver and store need.

    Every connection gets `connect_timeout`, the TCP keepalives of `KEEPALIVES` and a
    tcp_user_timeout of the pool `timeout`, so no connection attempt or statement waits on
    a dead peer for minutes; values the connection string sets itself are kept."""
    idle_check = IdleCheck(check_idle)
    network = {
        "connect_timeout": connect_timeout_seconds(connect_timeout),
        **KEEPALIVES,
        "tcp_user_timeout": int(timeout * 1000),
    }
    given = conninfo_to_dict(url)
    return ServerPool(
        url,
        connection_class=psycopg.AsyncConnection[DictRow],
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        reconnect_timeout=RECONNECT_TIMEOUT,
        open=False,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            "application_name": application_name,
            **{key: value for key, value in network.items() if key not in given},
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
    pool = create_pool(url, min_size, max_size, timeout, check_idle, connect_timeout=connect_timeout)
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
