"""The Postgres database resource: the pool, once every table this server uses is set up.

Set-up is one step under one advisory lock: LangGraph's checkpointer and store tables
(their own idempotent `setup()`), this server's migrations (schema `agent_server`: each
aggregate's migrations sit next to its SQL, in threads/sql.py, runs/sql.py,
assistants/sql.py and crons/sql.py, and are applied here in version order) and row-level security on
every table, so that several servers starting at once against a fresh database take turns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.store.base import IndexConfig
from langgraph.store.postgres.aio import AsyncPostgresStore

from src.services.assistants.sql import MIGRATIONS as ASSISTANT_MIGRATIONS
from src.services.crons.sql import MIGRATIONS as CRON_MIGRATIONS
from src.services.database import Connection, DatabaseUnavailable, Pool, opened_pool
from src.services.persistence import stop_batch_task
from src.services.runs.sql import MIGRATIONS as RUN_MIGRATIONS
from src.services.threads.sql import MIGRATIONS as THREAD_MIGRATIONS

logger = logging.getLogger(__name__)


def _in_order(*sources: dict[int, tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    merged: dict[int, tuple[str, ...]] = {}
    for source in sources:
        for version, statements in source.items():
            if version in merged:
                raise ValueError(f"schema migration version {version} is defined twice")
            merged[version] = statements
    if sorted(merged) != list(range(len(merged))):
        raise ValueError(f"schema migration versions must be 0..n without gaps, got {sorted(merged)}")
    return tuple(merged[version] for version in range(len(merged)))


# Append-only: each entry runs once, in order, and is recorded in schema_migrations.
MIGRATIONS = _in_order(THREAD_MIGRATIONS, ASSISTANT_MIGRATIONS, RUN_MIGRATIONS, CRON_MIGRATIONS)

CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS agent_server"
CREATE_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS agent_server.schema_migrations (version integer PRIMARY KEY, "
    "applied_at timestamptz NOT NULL DEFAULT now())"
)
ENABLE_MIGRATIONS_RLS = "ALTER TABLE agent_server.schema_migrations ENABLE ROW LEVEL SECURITY"
SELECT_MIGRATION_VERSION = "SELECT coalesce(max(version), -1) AS version FROM agent_server.schema_migrations"
INSERT_MIGRATION_VERSION = "INSERT INTO agent_server.schema_migrations (version) VALUES (%s)"

# The tables LangGraph's saver and store create. No policy is added, so a role other
# than the owner sees no rows: the server connects as the owner; anyone else must be
# given a policy on purpose.
CHECKPOINT_TABLES_RLS = (
    "ALTER TABLE IF EXISTS public.checkpoints ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE IF EXISTS public.checkpoint_blobs ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE IF EXISTS public.checkpoint_writes ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE IF EXISTS public.checkpoint_migrations ENABLE ROW LEVEL SECURITY",
)
STORE_TABLES_RLS = (
    "ALTER TABLE IF EXISTS public.store ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE IF EXISTS public.store_migrations ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE IF EXISTS public.store_vectors ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE IF EXISTS public.vector_migrations ENABLE ROW LEVEL SECURITY",
)

# One key for every schema change this server makes, so servers starting at once
# against a fresh database take turns instead of racing on CREATE TABLE.
SETUP_LOCK_KEY = 7_301_845_112_018_233_907
TRY_SETUP_LOCK = "SELECT pg_try_advisory_lock(%s) AS locked"
RELEASE_SETUP_LOCK = "SELECT pg_advisory_unlock(%s)"
SETUP_LOCK_POLL = 0.02
SETUP_LOCK_WAIT = 120.0
# The store's semantic search (langgraph.json store.index) keeps vectors with pgvector.
VECTOR_EXTENSION_AVAILABLE = "SELECT 1 AS found FROM pg_available_extensions WHERE name = 'vector'"
NO_PGVECTOR = (
    "store.index in langgraph.json needs the pgvector extension ('vector'), which this PostgreSQL "
    "server does not have: install pgvector on it, or remove store.index"
)


async def execute_all(conn: Connection, statements: Sequence[str]) -> None:
    for statement in statements:
        await conn.execute(statement)


async def _try_lock(conn: Connection) -> bool:
    row = await (await conn.execute(TRY_SETUP_LOCK, (SETUP_LOCK_KEY,))).fetchone()
    return bool(row and row["locked"])


@asynccontextmanager
async def setup_lock(pool: Pool) -> AsyncIterator[Connection]:
    """Hold the set-up advisory lock on one pooled connection and yield that connection."""
    async with pool.connection() as conn:
        # Poll instead of blocking in pg_advisory_lock(): a waiting statement holds a
        # snapshot, and the store's CREATE INDEX CONCURRENTLY under the lock waits for
        # every older snapshot to end - a deadlock between two starting servers.
        waited = 0.0
        while not await _try_lock(conn):
            if waited >= SETUP_LOCK_WAIT:
                raise DatabaseUnavailable(
                    f"another server has held the schema set-up lock for {SETUP_LOCK_WAIT:g} s; is its set-up stuck?"
                )
            await asyncio.sleep(SETUP_LOCK_POLL)
            waited += SETUP_LOCK_POLL
        try:
            yield conn
        finally:
            # A session lock outlives the checkout: release it before the connection
            # goes back to the pool, or the next set-up would wait forever.
            if not conn.closed:
                await conn.execute(RELEASE_SETUP_LOCK, (SETUP_LOCK_KEY,))


async def migrate(conn: Connection) -> int:
    """Apply this server's migrations not yet applied (the caller holds the lock); return how many ran."""
    await execute_all(conn, (CREATE_SCHEMA, CREATE_MIGRATIONS_TABLE, ENABLE_MIGRATIONS_RLS))
    row = await (await conn.execute(SELECT_MIGRATION_VERSION)).fetchone()
    current = int(row["version"]) if row else -1
    applied = 0
    for version in range(current + 1, len(MIGRATIONS)):
        async with conn.transaction():
            await execute_all(conn, MIGRATIONS[version])
            await conn.execute(INSERT_MIGRATION_VERSION, (version,))
        applied += 1
    return applied


async def set_up_schema(pool: Pool, store_index: IndexConfig | None = None) -> int:
    """Every table the server uses, with row-level security on; return how many of our migrations ran.

    With `store_index`, the store's vector tables too, which need pgvector: a server without
    it is refused here, in one line, before anything is created."""
    async with setup_lock(pool) as conn:
        if store_index is not None and await (await conn.execute(VECTOR_EXTENSION_AVAILABLE)).fetchone() is None:
            raise DatabaseUnavailable(NO_PGVECTOR)
        await AsyncPostgresSaver(conn).setup()
        await execute_all(conn, CHECKPOINT_TABLES_RLS)
        store = AsyncPostgresStore(conn, index=cast(Any, store_index))
        try:
            await store.setup()
        finally:
            stop_batch_task(store)
        await execute_all(conn, STORE_TABLES_RLS)
        return await migrate(conn)


async def init_database(
    url: str,
    min_size: int,
    max_size: int,
    timeout: float,
    connect_timeout: float,
    check_idle: float,
    store_index: IndexConfig | None = None,
) -> AsyncIterator[Pool]:
    """Resource: the server's one pool, once the schema is set up; closed at shutdown."""
    async with opened_pool(url, min_size, max_size, timeout, connect_timeout, check_idle) as pool:
        applied = await set_up_schema(pool, store_index)
        logger.info("tables ready (%d migration(s) applied), row-level security enabled", applied)
        yield pool
