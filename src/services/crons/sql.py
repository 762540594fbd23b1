"""The crons table (schema `agent_server`): its migration and every statement on it."""

from __future__ import annotations

from src.services.auth.sql import visible_condition
from src.services.crons.models import SORT_FIELDS, SORT_ORDERS

# Append-only, keyed by schema version (see src/services/schema.py). Never edit an entry
# that has shipped; add a new version.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        """CREATE TABLE agent_server.crons (
            cron_id uuid PRIMARY KEY,
            assistant_id text NOT NULL,
            thread_id uuid REFERENCES agent_server.threads (thread_id) ON DELETE CASCADE,
            user_id text,
            schedule text NOT NULL,
            timezone text,
            payload jsonb NOT NULL DEFAULT '{}',
            metadata jsonb NOT NULL DEFAULT '{}',
            on_run_completed text,
            enabled boolean NOT NULL DEFAULT true,
            end_time timestamptz,
            next_run_date timestamptz NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )""",
        # The scheduler's question, asked every few seconds by every server: which crons are due.
        "CREATE INDEX crons_due_idx ON agent_server.crons (next_run_date) WHERE enabled",
        "CREATE INDEX crons_thread_id_idx ON agent_server.crons (thread_id)",
        "CREATE INDEX crons_assistant_id_idx ON agent_server.crons (assistant_id)",
        "ALTER TABLE agent_server.crons ENABLE ROW LEVEL SECURITY",
    ),
    # Auth: the caller a cron's runs execute as (NULL: none, as for crons made before auth).
    4: ("ALTER TABLE agent_server.crons ADD COLUMN caller jsonb",),
}

CRON_COLUMNS = (
    "cron_id::text, assistant_id, thread_id::text, user_id, schedule, timezone, payload, metadata, "
    "on_run_completed, enabled, end_time, next_run_date, created_at, updated_at, caller"
)
INSERT_CRON = (
    "INSERT INTO agent_server.crons (cron_id, assistant_id, thread_id, user_id, schedule, timezone, payload, "
    "metadata, on_run_completed, enabled, end_time, next_run_date, caller) "
    f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {CRON_COLUMNS}"
)
# The caller's auth filter on the cron's metadata (src/services/auth/sql.py); NULL: none.
CRON_VISIBLE = visible_condition("metadata", "%(visible)s", "%(visible_contains)s")
SELECT_CRON = f"SELECT {CRON_COLUMNS} FROM agent_server.crons WHERE cron_id = %(cron_id)s AND {CRON_VISIBLE}"
# A PATCH reads and writes the row under its lock: a scheduler claiming the cron meanwhile
# skips it (SKIP LOCKED) instead of firing on what the PATCH is replacing.
SELECT_CRON_FOR_UPDATE = f"{SELECT_CRON} FOR UPDATE"
UPDATE_CRON = (
    "UPDATE agent_server.crons SET schedule = %s, timezone = %s, payload = %s, metadata = %s, "
    "on_run_completed = %s, enabled = %s, end_time = %s, next_run_date = %s, updated_at = now() "
    f"WHERE cron_id = %s RETURNING {CRON_COLUMNS}"
)
DELETE_CRON = f"DELETE FROM agent_server.crons WHERE cron_id = %(cron_id)s AND {CRON_VISIBLE}"
CRON_FILTER = (
    "WHERE (%(assistant_id)s::text IS NULL OR assistant_id = %(assistant_id)s) "
    "AND (%(thread_id)s::uuid IS NULL OR thread_id = %(thread_id)s::uuid) "
    "AND (%(enabled)s::boolean IS NULL OR enabled = %(enabled)s) "
    "AND (%(metadata)s::jsonb IS NULL OR metadata @> %(metadata)s::jsonb) "
    f"AND {CRON_VISIBLE}"
)
# ORDER BY cannot take parameters: one constant statement per allowed sort.
SEARCH_CRONS = {
    (column, direction): (
        f"SELECT {CRON_COLUMNS} FROM agent_server.crons {CRON_FILTER} "
        f"ORDER BY {column} {direction.upper()}, cron_id LIMIT %(limit)s OFFSET %(offset)s"
    )
    for column in SORT_FIELDS
    for direction in SORT_ORDERS
}
COUNT_CRONS = f"SELECT count(*) AS count FROM agent_server.crons {CRON_FILTER}"
# A firing is claimed and its cron's next_run_date advanced in one transaction; a row another
# server holds is skipped, so each firing creates one run however many servers poll.
SELECT_DUE_CRONS = (
    f"SELECT {CRON_COLUMNS} FROM agent_server.crons "
    "WHERE enabled AND next_run_date <= %(now)s AND (end_time IS NULL OR end_time > %(now)s) "
    "ORDER BY next_run_date LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
)
ADVANCE_CRON = "UPDATE agent_server.crons SET next_run_date = %s WHERE cron_id = %s"
SELECT_NEXT_DUE = (
    "SELECT min(next_run_date) AS next_run_date FROM agent_server.crons "
    "WHERE enabled AND (end_time IS NULL OR end_time > %s)"
)
