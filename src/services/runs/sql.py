"""Statements on the runs table (schema `agent_server`, created by the threads' migration 0).

A run's start and end each touch the run and its thread: one statement, one round trip.
"""

from __future__ import annotations

# Append-only, keyed by schema version (see src/services/schema.py); none yet of its own.
MIGRATIONS: dict[int, tuple[str, ...]] = {}

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
START_RUN = (
    "WITH run AS (UPDATE agent_server.runs SET status = 'running', updated_at = now() WHERE run_id = %s) "
    + _THREAD_BUSY
)
FINISH_RUN = (
    "WITH run AS (UPDATE agent_server.runs SET status = %s, error = %s, updated_at = now() WHERE run_id = %s) "
    'UPDATE agent_server.threads SET status = %s, "values" = coalesce(%s, "values"), '
    "interrupts = coalesce(%s, interrupts), error = %s, updated_at = now() WHERE thread_id = %s"
)
# Runs cut short by a server stop: nothing is executing them any more.
FAIL_ORPHANED_RUNS = (
    "UPDATE agent_server.runs SET status = 'error', error = %s, updated_at = now() "
    "WHERE status IN ('pending', 'running')"
)
RESET_BUSY_THREADS = (
    "UPDATE agent_server.threads SET status = 'error', error = %s, updated_at = now() WHERE status = 'busy'"
)
ORPHANED_RUN_ERROR = "the server stopped before this run finished"
# GET /metrics: how many runs wait and execute, across every server on the database.
COUNT_ACTIVE_RUNS = (
    "SELECT status, count(*) AS count FROM agent_server.runs WHERE status IN ('pending', 'running') GROUP BY status"
)
