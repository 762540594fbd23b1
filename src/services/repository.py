"""Where threads and run records live: in memory, or in Postgres's `agent_server` schema.

Checkpoints (a thread's state) live in LangGraph's own tables; this repository keeps
what the HTTP API adds around them: a thread's metadata, status and latest values, and
one record per run.
"""

from __future__ import annotations

import copy
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from src.services.database import Pool, execute_all, setup_lock
from src.services.validation import json_contains

logger = logging.getLogger(__name__)

Record = dict[str, Any]

# Append-only: each entry runs once, in order, and is recorded in schema_migrations.
# Never edit or reorder an entry that has shipped; add a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE agent_server.threads (
            thread_id uuid PRIMARY KEY,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            metadata jsonb NOT NULL DEFAULT '{}',
            status text NOT NULL DEFAULT 'idle',
            "values" jsonb,
            interrupts jsonb NOT NULL DEFAULT '{}',
            error text
        )""",
        """CREATE TABLE agent_server.runs (
            run_id uuid PRIMARY KEY,
            thread_id uuid REFERENCES agent_server.threads (thread_id) ON DELETE CASCADE,
            assistant_id text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            status text NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}',
            kwargs jsonb NOT NULL DEFAULT '{}',
            multitask_strategy text NOT NULL DEFAULT 'reject',
            error text
        )""",
        "CREATE INDEX runs_thread_id_created_at_idx ON agent_server.runs (thread_id, created_at DESC)",
        "ALTER TABLE agent_server.threads ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE agent_server.runs ENABLE ROW LEVEL SECURITY",
    ),
    (
        """CREATE TABLE agent_server.assistants (
            assistant_id uuid PRIMARY KEY,
            graph_id text NOT NULL,
            name text NOT NULL,
            description text,
            config jsonb NOT NULL DEFAULT '{}',
            context jsonb NOT NULL DEFAULT '{}',
            metadata jsonb NOT NULL DEFAULT '{}',
            version integer NOT NULL DEFAULT 1,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )""",
        """CREATE TABLE agent_server.assistant_versions (
            assistant_id uuid NOT NULL REFERENCES agent_server.assistants (assistant_id) ON DELETE CASCADE,
            version integer NOT NULL,
            graph_id text NOT NULL,
            name text NOT NULL,
            description text,
            config jsonb NOT NULL DEFAULT '{}',
            context jsonb NOT NULL DEFAULT '{}',
            metadata jsonb NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (assistant_id, version)
        )""",
        "CREATE INDEX assistants_graph_id_idx ON agent_server.assistants (graph_id)",
        "CREATE INDEX assistants_metadata_idx ON agent_server.assistants USING gin (metadata jsonb_path_ops)",
        "ALTER TABLE agent_server.assistants ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE agent_server.assistant_versions ENABLE ROW LEVEL SECURITY",
    ),
)

CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS agent_server"
CREATE_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS agent_server.schema_migrations (version integer PRIMARY KEY, "
    "applied_at timestamptz NOT NULL DEFAULT now())"
)
ENABLE_MIGRATIONS_RLS = "ALTER TABLE agent_server.schema_migrations ENABLE ROW LEVEL SECURITY"
SELECT_MIGRATION_VERSION = "SELECT coalesce(max(version), -1) AS version FROM agent_server.schema_migrations"
INSERT_MIGRATION_VERSION = "INSERT INTO agent_server.schema_migrations (version) VALUES (%s)"

THREAD_COLUMNS = 'thread_id::text, created_at, updated_at, metadata, status, "values", interrupts, error'
INSERT_THREAD = (
    "INSERT INTO agent_server.threads (thread_id, metadata) VALUES (%s, %s) "
    f"ON CONFLICT (thread_id) DO NOTHING RETURNING {THREAD_COLUMNS}"
)
SELECT_THREAD = f"SELECT {THREAD_COLUMNS} FROM agent_server.threads WHERE thread_id = %s"
UPDATE_THREAD_STATE = (
    'UPDATE agent_server.threads SET status = %s, "values" = coalesce(%s, "values"), '
    "interrupts = coalesce(%s, interrupts), error = %s, updated_at = now() WHERE thread_id = %s"
)
MERGE_THREAD_METADATA = (
    "UPDATE agent_server.threads SET metadata = metadata || %s, updated_at = now() WHERE thread_id = %s"
)
RUN_COLUMNS = (
    "run_id::text, thread_id::text, assistant_id, created_at, updated_at, status, metadata, kwargs, "
    "multitask_strategy, error"
)
INSERT_RUN = (
    "INSERT INTO agent_server.runs (run_id, thread_id, assistant_id, status, metadata, kwargs, multitask_strategy) "
    f"VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {RUN_COLUMNS}"
)
# What starting a run does to its thread (parameters: metadata to merge in, thread id).
_THREAD_BUSY = (
    "UPDATE agent_server.threads SET status = 'busy', metadata = metadata || %s, error = NULL, updated_at = now() "
    "WHERE thread_id = %s"
)
# A run that starts at once is inserted running, its thread made busy in the same
# statement (else START_RUN follows). No thread row: the insert's foreign key fails.
INSERT_STARTED_RUN = f"WITH thread AS ({_THREAD_BUSY}) {INSERT_RUN}"
SELECT_RUN = f"SELECT {RUN_COLUMNS} FROM agent_server.runs WHERE run_id = %s"
SELECT_THREAD_RUNS = (
    f"SELECT {RUN_COLUMNS} FROM agent_server.runs WHERE thread_id = %s AND (%s::text IS NULL OR status = %s) "
    "ORDER BY created_at DESC LIMIT %s OFFSET %s"
)
DELETE_RUN = "DELETE FROM agent_server.runs WHERE run_id = %s"
THREAD_EXISTS = "SELECT 1 AS found FROM agent_server.threads WHERE thread_id = %s"
# A run's start and end each touch the run and its thread: one statement, one round trip.
START_RUN = (
    "WITH run AS (UPDATE agent_server.runs SET status = 'running', updated_at = now() WHERE run_id = %s) "
    + _THREAD_BUSY
)
FINISH_RUN = (
    "WITH run AS (UPDATE agent_server.runs SET status = %s, error = %s, updated_at = now() WHERE run_id = %s) "
    'UPDATE agent_server.threads SET status = %s, "values" = coalesce(%s, "values"), '
    "interrupts = coalesce(%s, interrupts), error = %s, updated_at = now() WHERE thread_id = %s"
)
DELETE_THREAD = "DELETE FROM agent_server.threads WHERE thread_id = %s"
# jsonb containment (@>) is the LangGraph API's metadata/values filter.
THREAD_FILTER = (
    "WHERE (%(metadata)s::jsonb IS NULL OR metadata @> %(metadata)s::jsonb) "
    'AND (%(values)s::jsonb IS NULL OR "values" @> %(values)s::jsonb) '
    "AND (%(status)s::text IS NULL OR status = %(status)s) "
    "AND (%(ids)s::uuid[] IS NULL OR thread_id = ANY(%(ids)s::uuid[]))"
)
# ORDER BY cannot take parameters: one constant clause per allowed sort.
THREAD_ORDERS = {
    (column, direction): f"{column} {direction.upper()}, thread_id"
    for column in ("thread_id", "status", "created_at", "updated_at")
    for direction in ("asc", "desc")
}
SEARCH_THREADS = (
    f"SELECT {THREAD_COLUMNS} FROM agent_server.threads {THREAD_FILTER} "
    "ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
)
COUNT_THREADS = f"SELECT count(*) AS count FROM agent_server.threads {THREAD_FILTER}"
# Runs cut short by a server stop: nothing is executing them any more.
FAIL_ORPHANED_RUNS = (
    "UPDATE agent_server.runs SET status = 'error', error = %s, updated_at = now() "
    "WHERE status IN ('pending', 'running')"
)
RESET_BUSY_THREADS = (
    "UPDATE agent_server.threads SET status = 'error', error = %s, updated_at = now() WHERE status = 'busy'"
)
ORPHANED_RUN_ERROR = "the server stopped before this run finished"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ThreadFilter:
    """What a thread search matches: metadata and values by containment, status, ids."""

    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: str | None = None
    ids: list[str] | None = None

    def matches(self, thread: Record) -> bool:
        return (
            (self.metadata is None or json_contains(thread["metadata"], self.metadata))
            and (self.values is None or json_contains(thread["values"] or {}, self.values))
            and (self.status is None or thread["status"] == self.status)
            and (self.ids is None or thread["thread_id"] in self.ids)
        )

    def params(self) -> dict[str, Any]:
        return {
            "metadata": Jsonb(self.metadata) if self.metadata is not None else None,
            "values": Jsonb(self.values) if self.values is not None else None,
            "status": self.status,
            "ids": self.ids,
        }


class Repository(ABC):
    """Threads and run records. Implementations must be safe for concurrent coroutines."""

    @abstractmethod
    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> Record | None:
        """Insert a thread; None when the id is taken."""

    @abstractmethod
    async def get_thread(self, thread_id: str) -> Record | None: ...

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
    ) -> list[Record]: ...

    @abstractmethod
    async def count_threads(self, where: ThreadFilter) -> int: ...

    @abstractmethod
    async def create_run(self, run: Record, thread_metadata: dict[str, Any] | None = None) -> Record | None:
        """Insert a run record; None when its thread does not exist.

        With `thread_metadata` the run is inserted already running, as `start_run` would
        leave it (its thread busy, with `thread_metadata` merged in)."""

    @abstractmethod
    async def get_run(self, run_id: str) -> Record | None: ...

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
    async def list_runs(self, thread_id: str, limit: int, offset: int, status: str | None) -> list[Record]:
        """A thread's runs, newest first."""

    @abstractmethod
    async def delete_run(self, run_id: str) -> bool: ...

    @abstractmethod
    async def delete_thread(self, thread_id: str) -> bool:
        """Delete a thread and its run records; False when it did not exist."""

    @abstractmethod
    async def recover(self) -> int:
        """Mark runs and threads left in flight by a previous process; return how many runs."""


class MemoryRepository(Repository):
    """In-process dictionaries; coroutines on one loop need no lock between awaits."""

    def __init__(self) -> None:
        self._threads: dict[str, Record] = {}
        self._runs: dict[str, Record] = {}

    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> Record | None:
        if thread_id in self._threads:
            return None
        stamp = now()
        thread = {
            "thread_id": thread_id,
            "created_at": stamp,
            "updated_at": stamp,
            "metadata": copy.deepcopy(metadata),
            "status": "idle",
            "values": None,
            "interrupts": {},
            "error": None,
        }
        self._threads[thread_id] = thread
        return copy.deepcopy(thread)

    async def get_thread(self, thread_id: str) -> Record | None:
        thread = self._threads.get(thread_id)
        return copy.deepcopy(thread) if thread is not None else None

    async def thread_exists(self, thread_id: str) -> bool:
        return thread_id in self._threads

    async def start_run(self, run_id: str, thread_id: str, thread_metadata: dict[str, Any]) -> None:
        stamp = now()
        if (run := self._runs.get(run_id)) is not None:
            run.update(status="running", updated_at=stamp)
        if (thread := self._threads.get(thread_id)) is not None:
            thread["metadata"].update(copy.deepcopy(thread_metadata))
            thread.update(status="busy", error=None, updated_at=stamp)

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
        if (run := self._runs.get(run_id)) is not None:
            run.update(status=run_status, error=error, updated_at=stamp)
        if (thread := self._threads.get(thread_id)) is not None:
            thread.update(status=thread_status, error=error, updated_at=stamp)
            if values is not None:
                thread["values"] = values
            if interrupts is not None:
                thread["interrupts"] = interrupts

    async def set_thread_state(
        self,
        thread_id: str,
        status: str,
        values: Any | None = None,
        interrupts: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        thread = self._threads.get(thread_id)
        if thread is None:
            return
        thread.update(status=status, error=error, updated_at=now())
        if values is not None:
            thread["values"] = copy.deepcopy(values)
        if interrupts is not None:
            thread["interrupts"] = copy.deepcopy(interrupts)

    async def merge_thread_metadata(self, thread_id: str, metadata: dict[str, Any]) -> None:
        thread = self._threads.get(thread_id)
        if thread is not None:
            thread["metadata"].update(copy.deepcopy(metadata))
            thread["updated_at"] = now()

    async def search_threads(
        self, where: ThreadFilter, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[Record]:
        found = [thread for thread in self._threads.values() if where.matches(thread)]
        found.sort(key=lambda thread: (thread[sort_by], thread["thread_id"]), reverse=sort_order == "desc")
        return copy.deepcopy(found[offset : offset + limit])

    async def count_threads(self, where: ThreadFilter) -> int:
        return sum(1 for thread in self._threads.values() if where.matches(thread))

    async def create_run(self, run: Record, thread_metadata: dict[str, Any] | None = None) -> Record | None:
        if run["thread_id"] not in self._threads:
            return None
        stamp = now()
        stored = {**copy.deepcopy(run), "created_at": stamp, "updated_at": stamp, "error": None}
        self._runs[run["run_id"]] = stored
        if thread_metadata is not None:
            await self.start_run(run["run_id"], run["thread_id"], thread_metadata)
        return copy.deepcopy(stored)

    async def get_run(self, run_id: str) -> Record | None:
        run = self._runs.get(run_id)
        return copy.deepcopy(run) if run is not None else None

    async def list_runs(self, thread_id: str, limit: int, offset: int, status: str | None) -> list[Record]:
        runs = [
            run
            for run in self._runs.values()
            if run["thread_id"] == thread_id and (status is None or run["status"] == status)
        ]
        runs.sort(key=lambda run: run["created_at"], reverse=True)
        return copy.deepcopy(runs[offset : offset + limit])

    async def delete_run(self, run_id: str) -> bool:
        return self._runs.pop(run_id, None) is not None

    async def delete_thread(self, thread_id: str) -> bool:
        for run_id in [r for r, run in self._runs.items() if run["thread_id"] == thread_id]:
            del self._runs[run_id]
        return self._threads.pop(thread_id, None) is not None

    async def recover(self) -> int:
        return 0  # a new process starts with empty dictionaries


class PostgresRepository(Repository):
    """Tables in the `agent_server` schema, on the shared pool."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def _one(self, query: str, params: tuple[Any, ...]) -> Record | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, params)  # type: ignore[arg-type]  # module constants
            return await cursor.fetchone()  # type: ignore[return-value]  # pool uses dict_row

    async def _execute(self, query: str, params: tuple[Any, ...]) -> int:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, params)  # type: ignore[arg-type]  # module constants
            return cursor.rowcount

    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> Record | None:
        return await self._one(INSERT_THREAD, (thread_id, Jsonb(metadata)))

    async def get_thread(self, thread_id: str) -> Record | None:
        return await self._one(SELECT_THREAD, (thread_id,))

    async def thread_exists(self, thread_id: str) -> bool:
        return await self._one(THREAD_EXISTS, (thread_id,)) is not None

    async def start_run(self, run_id: str, thread_id: str, thread_metadata: dict[str, Any]) -> None:
        await self._execute(START_RUN, (run_id, Jsonb(thread_metadata), thread_id))

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
        await self._execute(
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

    async def set_thread_state(
        self,
        thread_id: str,
        status: str,
        values: Any | None = None,
        interrupts: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        await self._execute(
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
        await self._execute(MERGE_THREAD_METADATA, (Jsonb(metadata), thread_id))

    async def search_threads(
        self, where: ThreadFilter, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[Record]:
        query = SEARCH_THREADS.format(order=THREAD_ORDERS[(sort_by, sort_order)])
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, {**where.params(), "limit": limit, "offset": offset})  # type: ignore[arg-type]
            return await cursor.fetchall()

    async def count_threads(self, where: ThreadFilter) -> int:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(COUNT_THREADS, where.params())).fetchone()
            return int(row["count"]) if row else 0

    async def create_run(self, run: Record, thread_metadata: dict[str, Any] | None = None) -> Record | None:
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
                return await self._one(INSERT_RUN, params)
            return await self._one(INSERT_STARTED_RUN, (Jsonb(thread_metadata), run["thread_id"], *params))
        except psycopg.errors.ForeignKeyViolation:
            return None  # no such thread

    async def get_run(self, run_id: str) -> Record | None:
        return await self._one(SELECT_RUN, (run_id,))

    async def list_runs(self, thread_id: str, limit: int, offset: int, status: str | None) -> list[Record]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(SELECT_THREAD_RUNS, (thread_id, status, status, limit, offset))
            return await cursor.fetchall()

    async def delete_run(self, run_id: str) -> bool:
        return await self._execute(DELETE_RUN, (run_id,)) > 0

    async def delete_thread(self, thread_id: str) -> bool:
        return await self._execute(DELETE_THREAD, (thread_id,)) > 0

    async def recover(self) -> int:
        runs = await self._execute(FAIL_ORPHANED_RUNS, (ORPHANED_RUN_ERROR,))
        await self._execute(RESET_BUSY_THREADS, (ORPHANED_RUN_ERROR,))
        return runs


async def migrate(pool: Pool) -> int:
    """Apply the migrations not yet applied, under the set-up lock; return how many ran."""
    async with setup_lock(pool) as conn:
        await execute_all(conn, (CREATE_SCHEMA, CREATE_MIGRATIONS_TABLE, ENABLE_MIGRATIONS_RLS))
        row = await (await conn.execute(SELECT_MIGRATION_VERSION)).fetchone()
        current: int = row["version"]  # type: ignore[call-overload,index]  # pool uses dict_row
        applied = 0
        for version in range(current + 1, len(MIGRATIONS)):
            async with conn.transaction():
                await execute_all(conn, MIGRATIONS[version])
                await conn.execute(INSERT_MIGRATION_VERSION, (version,))
            applied += 1
        return applied


async def init_repository(pool: Pool | None) -> AsyncIterator[Repository]:
    """Resource: the repository matching the persistence backend, recovered from any crash."""
    if pool is None:
        yield MemoryRepository()
        return
    applied = await migrate(pool)
    repository = PostgresRepository(pool)
    orphaned = await repository.recover()
    logger.info(
        "agent_server tables ready (%d migration(s) applied), row-level security enabled%s",
        applied,
        f"; {orphaned} run(s) cut short by the last stop marked error" if orphaned else "",
    )
    yield repository
