"""The threads table (schema `agent_server`): its migration and every statement on it.

Checkpoints (a thread's state) live in LangGraph's own tables; this table keeps what the
HTTP API adds around them: a thread's metadata, status and latest values.
"""

from __future__ import annotations

from src.services.auth.sql import visible_condition

# Append-only, keyed by the version recorded in agent_server.schema_migrations (see
# src/services/schema.py). Never edit an entry that has shipped; add a new version.
# Version 0 created the runs table too (its SQL is in src/services/runs/sql.py).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    0: (
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
}

THREAD_COLUMNS = 'thread_id::text, created_at, updated_at, metadata, status, "values", interrupts, error'
INSERT_THREAD = (
    "INSERT INTO agent_server.threads (thread_id, metadata) VALUES (%s, %s) "
    f"ON CONFLICT (thread_id) DO NOTHING RETURNING {THREAD_COLUMNS}"
)
SELECT_THREAD = f"SELECT {THREAD_COLUMNS} FROM agent_server.threads WHERE thread_id = %s"
# The caller's auth filter on the thread's metadata (src/services/auth/sql.py); NULL: none.
THREAD_VISIBLE = visible_condition("metadata", "%(visible)s", "%(visible_contains)s")
SELECT_VISIBLE_THREAD = (
    f"SELECT {THREAD_COLUMNS} FROM agent_server.threads WHERE thread_id = %(thread_id)s AND {THREAD_VISIBLE}"
)
THREAD_EXISTS = "SELECT 1 AS found FROM agent_server.threads WHERE thread_id = %s"
UPDATE_THREAD_STATE = (
    'UPDATE agent_server.threads SET status = %s, "values" = coalesce(%s, "values"), '
    "interrupts = coalesce(%s, interrupts), error = %s, updated_at = now() WHERE thread_id = %s"
)
MERGE_THREAD_METADATA = (
    "UPDATE agent_server.threads SET metadata = metadata || %s, updated_at = now() WHERE thread_id = %s"
)
DELETE_THREAD = "DELETE FROM agent_server.threads WHERE thread_id = %s"
# jsonb containment (@>) is the LangGraph API's metadata/values filter.
THREAD_FILTER = (
    "WHERE (%(metadata)s::jsonb IS NULL OR metadata @> %(metadata)s::jsonb) "
    'AND (%(values)s::jsonb IS NULL OR "values" @> %(values)s::jsonb) '
    "AND (%(status)s::text IS NULL OR status = %(status)s) "
    "AND (%(ids)s::uuid[] IS NULL OR thread_id = ANY(%(ids)s::uuid[])) "
    f"AND {THREAD_VISIBLE}"
)
# ORDER BY cannot take parameters: one constant statement per allowed sort.
SEARCH_THREADS = {
    (column, direction): (
        f"SELECT {THREAD_COLUMNS} FROM agent_server.threads {THREAD_FILTER} "
        f"ORDER BY {column} {direction.upper()}, thread_id LIMIT %(limit)s OFFSET %(offset)s"
    )
    for column in ("thread_id", "status", "created_at", "updated_at")
    for direction in ("asc", "desc")
}
COUNT_THREADS = f"SELECT count(*) AS count FROM agent_server.threads {THREAD_FILTER}"

# Thread TTL (langgraph.json checkpointer.ttl, src/services/threads/retention.py): threads not
# updated for %(seconds)s seconds, neither busy nor with a run pending or running.
_EXPIRED_THREAD = (
    "t.updated_at < now() - make_interval(secs => %(seconds)s) AND t.status <> 'busy' "
    "AND NOT EXISTS (SELECT 1 FROM agent_server.runs r "
    "WHERE r.thread_id = t.thread_id AND r.status IN ('pending', 'running'))"
)
# strategy "delete": the oldest such rows go in one statement (their runs and crons by cascade);
# rows another server is deleting at the same moment are skipped, not waited for.
DELETE_EXPIRED_THREADS = (
    "DELETE FROM agent_server.threads WHERE thread_id IN (SELECT t.thread_id FROM agent_server.threads t "
    f"WHERE {_EXPIRED_THREAD} ORDER BY t.updated_at LIMIT %(limit)s FOR UPDATE OF t SKIP LOCKED) "
    "RETURNING thread_id::text"
)
# strategy "keep_latest": only threads with more than one root checkpoint, so that a pruned
# thread is not chosen again at every sweep.
SELECT_PRUNABLE_THREADS = (
    f"SELECT t.thread_id::text FROM agent_server.threads t WHERE {_EXPIRED_THREAD} "
    "AND (SELECT count(*) FROM (SELECT 1 FROM public.checkpoints c "
    "WHERE c.thread_id = t.thread_id::text AND c.checkpoint_ns = '' LIMIT 2) AS two) = 2 "
    "ORDER BY t.updated_at LIMIT %(limit)s"
)
