"""Messages between the server processes that share a database: Postgres LISTEN/NOTIFY.

Every process listens on one channel (sql.CHANNEL) on a connection of its own, outside the
pool (a listening connection is never handed back). A message is a small JSON object:

- `{"kind": "queued"}`: a run waits; processes with a free slot try to take one;
- `{"kind": "finished", "run": id}`: a run ended (sent only when a run of its thread
  waits or someone elsewhere follows it): waiters look, workers try to take the next;
- `{"kind": "cancel", "run": id}`: its owner cancels it (the action is in the run's row);
- `{"kind": "watch", "run": id}`: someone elsewhere follows it: its owner starts writing
  its events to the run_events table;
- `{"kind": "events", "run": id}`: new events of a run are in the table.

Notifications sent while a process was not listening are lost (an outage, a restart of
its connection): every process also looks on a slow poll, so nothing waits for ever. On
memory persistence the one process delivers messages to itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from src.services.database import APPLICATION_NAME, KEEPALIVES, connect_timeout_seconds, one_line
from src.services.runs.repository import RunRepository
from src.services.runs.sql import CHANNEL

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]
RECONNECT_SECONDS = 0.5


class Notifier:
    """Delivers messages to this process's handlers; `send` reaches every process."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def deliver(self, message: dict[str, Any]) -> None:
        for handler in self._handlers:
            try:
                handler(message)
            except Exception:  # one handler's bug must not stop the others
                logger.exception("handling %s failed", message)

    async def send(self, message: dict[str, Any]) -> None:
        """In process only; PostgresNotifier reaches the other processes too."""
        asyncio.get_running_loop().call_soon(self.deliver, message)

    async def listening(self) -> None:
        """Returns once messages are being received (at once in process)."""


class PostgresNotifier(Notifier):
    """LISTEN on a dedicated connection, reconnecting while the database is away."""

    def __init__(self, url: str, runs: RunRepository, connect_timeout: float) -> None:
        super().__init__()
        self._url = url
        self._connect_timeout = connect_timeout
        self._runs = runs
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="run notifications")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def listening(self) -> None:
        await self._ready.wait()

    async def send(self, message: dict[str, Any]) -> None:
        # This process hears it at once, even while its listening connection is being
        # re-established; the echo that comes back through Postgres is harmless (every
        # handler only looks again).
        await super().send(message)
        await self._runs.notify(message)

    async def _listen(self) -> None:
        lost: str | None = None
        while True:
            try:
                # A vanished peer is noticed by TCP within seconds, as on the pool's connections.
                network: dict[str, Any] = {k: v for k, v in KEEPALIVES.items() if k not in conninfo_to_dict(self._url)}
                conn = await psycopg.AsyncConnection.connect(
                    self._url,
                    autocommit=True,
                    application_name=f"{APPLICATION_NAME} (notifications)",
                    connect_timeout=connect_timeout_seconds(self._connect_timeout),
                    **network,
                )
            except psycopg.Error as exc:
                if lost is None:
                    lost = one_line(exc)
                    logger.warning("run notifications: cannot listen: %s", lost)
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            try:
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if lost is not None:
                        logger.info("run notifications: listening again")
                        lost = None
                    self._ready.set()
                    # Whatever was sent while nobody listened: every handler looks once.
                    self.deliver({"kind": "queued"})
                    async for notify in conn.notifies():
                        self.deliver(_decode(notify.payload))
            except psycopg.Error as exc:
                lost = one_line(exc)
                logger.warning("run notifications: connection lost: %s", lost)
                await asyncio.sleep(RECONNECT_SECONDS)


def _decode(payload: str) -> dict[str, Any]:
    try:
        message = json.loads(payload)
    except json.JSONDecodeError:
        return {"kind": "unknown"}
    return message if isinstance(message, dict) else {"kind": "unknown"}


async def init_postgres_notifier(url: str, runs: RunRepository, connect_timeout: float) -> AsyncIterator[Notifier]:
    """Resource: listening for the other processes' messages before the first request."""
    notifier = PostgresNotifier(url, runs, connect_timeout)
    notifier.start()
    try:
        await asyncio.wait_for(notifier.listening(), connect_timeout)
    except TimeoutError:
        logger.warning("run notifications: not listening yet; runs are found by polling meanwhile")
    try:
        yield notifier
    finally:
        await notifier.stop()
