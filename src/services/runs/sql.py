"""The runs table (schema `agent_server`, created by the threads' migration 0) as a queue.

Every server process on the database takes runs from this table: a run waits `pending`
until some process claims it (`FOR UPDATE SKIP LOCKED`), then is `running` under that
process's lease (`owner`, `lease_until`), which the owner renews while it executes. A
lease that lapses (its process died, froze or lost the database) is swept: the run goes
back to `pending` and is resumed elsewhere, up to `max_attempts`. At most one run per
thread is `running`: a partial unique index enforces it, so no race can start two.

A run's start and end each touch the run and its thread: one statement, one round trip.
"""

from __future__ import annotations

# The channel every process listens on (src/services/runs/notifier.py): payloads are JSON.
CHANNEL = "agent_server_runs"
ORPHANED_RUN_ERROR = "the server stopped before this run finished"

# Append-only, keyed by schema version (see src/services/schema.py).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    3: (
        # Runs a server of an earlier version left in flight: nothing executes them any more,
        # and two of them running on one thread would stop the index below from being built.
        "UPDATE agent_server.runs SET status = 'error', error = '" + ORPHANED_RUN_ERROR + "', updated_at = now() "
        "WHERE status IN ('pending', 'running')",
        "UPDATE agent_server.threads SET status = 'error', error = '" + ORPHANED_RUN_ERROR + "', updated_at = now() "
        "WHERE status = 'busy'",
        """ALTER TABLE agent_server.runs
            ADD COLUMN owner text,
            ADD COLUMN lease_until timestamptz,
            ADD COLUMN attempt integer NOT NULL DEFAULT 0,
            ADD COLUMN request jsonb,
            ADD COLUMN cancel text,
            ADD COLUMN watched boolean NOT NULL DEFAULT false""",
        "CREATE UNIQUE INDEX runs_one_running_per_thread ON agent_server.runs (thread_id) WHERE status = 'running'",
        "CREATE INDEX runs_pending_idx ON agent_server.runs (created_at, run_id) WHERE status = 'pending'",
        "CREATE INDEX runs_running_lease_idx ON agent_server.runs (lease_until) WHERE status = 'running'",
        # Events of runs followed from another process than the one executing them.
        """CREATE TABLE agent_server.run_events (
            run_id uuid NOT NULL REFERENCES agent_server.runs (run_id) ON DELETE CASCADE,
            seq integer NOT NULL,
            event text NOT NULL,
            data jsonb,
            PRIMARY KEY (run_id, seq)
        )""",
        "ALTER TABLE agent_server.run_events ENABLE ROW LEVEL SECURITY",
    ),
}

RUN_COLUMNS = (
    "run_id::text, thread_id::text, assistant_id, created_at, updated_at, status, metadata, kwargs, "
    "multitask_strategy, error, owner, attempt, request, cancel, watched"
)
_RUN_COLUMNS_OF_R = ", ".join(f"r.{column.strip()}" for column in RUN_COLUMNS.split(","))
# Parameters: run_id, thread_id, assistant_id, metadata, kwargs, multitask_strategy, request.
_VALUES = "%s, %s, %s, %s, %s, %s, %s"
INSERT_PENDING_RUN = (
    "INSERT INTO agent_server.runs "
    "(run_id, thread_id, assistant_id, metadata, kwargs, multitask_strategy, request, status) "
    f"VALUES ({_VALUES}, 'pending') RETURNING {RUN_COLUMNS}"
)
# A run that can start at once (its thread has no run pending or running) is inserted
# running under the lease of the process that accepted it, its thread made busy, in one
# statement. Parameters: metadata for the thread, thread id (twice), the run's values,
# owner, lease seconds. No row: the thread is busy, insert it pending instead. No thread:
# the foreign key fails. Two such inserts on one thread at once: the unique index fails one.
INSERT_STARTED_RUN = f"""
WITH idle AS (
    SELECT NOT EXISTS (
        SELECT 1 FROM agent_server.runs WHERE thread_id = %s AND status IN ('pending', 'running')
    ) AS idle
),
thread AS (
    UPDATE agent_server.threads
    SET status = 'busy', metadata = metadata || %s, error = NULL, updated_at = now()
    WHERE thread_id = %s AND (SELECT idle FROM idle)
)
INSERT INTO agent_server.runs
    (run_id, thread_id, assistant_id, metadata, kwargs, multitask_strategy, request, status, owner,
     lease_until, attempt)
SELECT {_VALUES}, 'running', %s, now() + %s * interval '1 second', 1 FROM idle WHERE idle
RETURNING {RUN_COLUMNS}
"""
# Whether the thread has a run in progress or waiting (multitask_strategy='reject').
THREAD_HAS_RUN = (
    "SELECT 1 AS found FROM agent_server.runs WHERE thread_id = %s AND status IN ('pending', 'running') LIMIT 1"
)
SELECT_RUN = f"SELECT {RUN_COLUMNS} FROM agent_server.runs WHERE run_id = %s"
SELECT_THREAD_RUNS = (
    f"SELECT {RUN_COLUMNS} FROM agent_server.runs WHERE thread_id = %s AND (%s::text IS NULL OR status = %s) "
    "ORDER BY created_at DESC LIMIT %s OFFSET %s"
)
SELECT_ACTIVE_THREAD_RUNS = (
    f"SELECT {RUN_COLUMNS} FROM agent_server.runs WHERE thread_id = %s AND status IN ('pending', 'running') "
    "ORDER BY created_at, run_id"
)
# Runs of a thread created after a point (a thread stream's discovery of new runs).
SELECT_THREAD_RUNS_SINCE = (
    f"SELECT {RUN_COLUMNS} FROM agent_server.runs WHERE thread_id = %s AND created_at > %s ORDER BY created_at, run_id"
)
# Pending and running runs a bulk cancel names: of a thread, by ids, with a status (NULL: any).
SELECT_ACTIVE_RUNS = (
    f"SELECT {RUN_COLUMNS} FROM agent_server.runs WHERE status IN ('pending', 'running') "
    "AND (%s::uuid IS NULL OR thread_id = %s::uuid) AND (%s::uuid[] IS NULL OR run_id = ANY(%s::uuid[])) "
    "AND (%s::text IS NULL OR status = %s) ORDER BY created_at, run_id"
)
DELETE_RUN = "DELETE FROM agent_server.runs WHERE run_id = %s"
# The oldest pending run whose thread has nothing running and no older pending run, taken
# by `owner` for `lease` seconds; its thread made busy. Runs of one thread therefore run
# one after another in the order they came, whichever process takes them.
CLAIM_RUN = f"""
WITH candidate AS (
    SELECT r.run_id FROM agent_server.runs r
    WHERE r.status = 'pending'
      AND NOT EXISTS (
          SELECT 1 FROM agent_server.runs x WHERE x.thread_id = r.thread_id AND x.status = 'running'
      )
      AND NOT EXISTS (
          SELECT 1 FROM agent_server.runs p
          WHERE p.thread_id = r.thread_id AND p.status = 'pending'
            AND (p.created_at, p.run_id) < (r.created_at, r.run_id)
      )
    ORDER BY r.created_at, r.run_id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE agent_server.runs r
    SET status = 'running', owner = %s, lease_until = now() + %s * interval '1 second',
        attempt = r.attempt + 1, updated_at = now()
    FROM candidate WHERE r.run_id = candidate.run_id
    RETURNING {_RUN_COLUMNS_OF_R}
),
thread AS (
    UPDATE agent_server.threads t
    SET status = 'busy', error = NULL, updated_at = now(),
        metadata = t.metadata || jsonb_build_object('graph_id', c.request->>'graph_id', 'assistant_id', c.assistant_id)
    FROM claimed c WHERE t.thread_id = c.thread_id::uuid
)
SELECT * FROM claimed
"""
# The owner's heartbeat: every run it executes keeps its lease; the ids say which it still owns,
# and `cancel` which of them someone asked to cancel (should the `cancel` message be lost).
RENEW_LEASES = (
    "UPDATE agent_server.runs SET lease_until = now() + %s * interval '1 second' "
    "WHERE owner = %s AND status = 'running' RETURNING run_id::text, cancel"
)
# Runs whose lease lapsed: back to pending (resumed elsewhere) or, after max_attempts,
# error; a run whose cancellation was asked is interrupted instead. Their threads follow.
# A run whose rollback was asked stays running, taken by the sweeping process under a lease
# of its own: the checkpoints it wrote must go before the next run of its thread may start
# (it would start from them), and the sweeper deletes them (no SQL can), then the run
# (ROLL_BACK_RUN). Should the sweeper die meanwhile, its lease lapses and another one does it.
SWEEP_EXPIRED = """
WITH expired AS (
    SELECT run_id FROM agent_server.runs
    WHERE status = 'running' AND lease_until < now()
    FOR UPDATE SKIP LOCKED
),
swept AS (
    UPDATE agent_server.runs r
    SET status = CASE WHEN r.cancel = 'rollback' THEN 'running'
                      WHEN r.cancel IS NOT NULL THEN 'interrupted'
                      WHEN r.attempt >= %(max_attempts)s THEN 'error' ELSE 'pending' END,
        error = CASE WHEN r.cancel IS NOT NULL THEN 'cancelled by request'
                     WHEN r.attempt >= %(max_attempts)s THEN %(gave_up)s ELSE r.error END,
        owner = CASE WHEN r.cancel = 'rollback' THEN %(owner)s END,
        lease_until = CASE WHEN r.cancel = 'rollback' THEN now() + %(lease)s * interval '1 second' END,
        updated_at = now()
    FROM expired WHERE r.run_id = expired.run_id
    RETURNING r.run_id::text, r.thread_id, r.status, r.error
),
threads AS (
    UPDATE agent_server.threads t
    SET status = CASE WHEN s.status = 'error' THEN 'error' WHEN s.status IN ('pending', 'running') THEN 'busy'
                      ELSE 'idle' END,
        error = CASE WHEN s.status = 'error' THEN s.error ELSE NULL END, updated_at = now()
    FROM swept s WHERE t.thread_id = s.thread_id
)
SELECT run_id, thread_id::text, CASE WHEN status = 'running' THEN 'rollback' ELSE status END AS status FROM swept
"""
# The end of a statement that ended a run (`run` holds its thread_id and watched): tells every
# process when someone follows the run or a run of its thread waits. Parameters: the channel
# and the notification's payload.
_NOTIFY_FOLLOWERS_AND_WAITERS = """
SELECT run.thread_id::text,
    (SELECT pg_notify(%s, %s) WHERE run.watched OR EXISTS (
        SELECT 1 FROM agent_server.runs p WHERE p.thread_id = run.thread_id AND p.status = 'pending'
    )) IS NOT NULL AS notified
FROM run
"""
# How a run ended and its thread's state after it, if `owner` still holds it (a process that
# lost its lease must not overwrite the run another process took over). The other processes
# hear of it when a run of the thread waits or someone elsewhere follows this one. A run
# followed elsewhere (`watched`) ends only once its owner stored all its events (`shared`):
# a follower that sees it ended reads the events left and stops, and the owner may not have
# heard yet that it is followed. Parameters: status, error, run id, owner, shared, then the
# thread's status, values, interrupts, error, then the channel and the notification's payload.
FINISH_RUN = (
    """
WITH run AS (
    UPDATE agent_server.runs SET status = %s, error = %s, owner = NULL, lease_until = NULL, updated_at = now()
    WHERE run_id = %s AND owner IS NOT DISTINCT FROM %s AND (NOT watched OR %s)
    RETURNING thread_id, watched
),
thread AS (
    UPDATE agent_server.threads t
    SET status = %s, "values" = coalesce(%s, "values"), interrupts = coalesce(%s, interrupts), error = %s,
        updated_at = now()
    FROM run WHERE t.thread_id = run.thread_id
)
"""
    + _NOTIFY_FOLLOWERS_AND_WAITERS
)
# A cancelled run rolled back by the process that holds it: gone, as if it had never been made
# (its checkpoints deleted before), its thread idle again. Its events go with it (cascade); the
# notification tells its followers elsewhere and wakes the workers when a run of the thread waits.
# Parameters: run id, owner, the channel and the notification's payload.
ROLL_BACK_RUN = (
    """
WITH run AS (
    DELETE FROM agent_server.runs WHERE run_id = %s AND owner IS NOT DISTINCT FROM %s
    RETURNING thread_id, watched
),
thread AS (
    UPDATE agent_server.threads t SET status = 'idle', error = NULL, updated_at = now()
    FROM run WHERE t.thread_id = run.thread_id
)
"""
    + _NOTIFY_FOLLOWERS_AND_WAITERS
)
# A pending run cancelled before anyone took it; its thread is idle again unless more wait.
CANCEL_PENDING_RUN = """
WITH run AS (
    UPDATE agent_server.runs SET status = 'interrupted', error = %s, updated_at = now()
    WHERE run_id = %s AND status = 'pending'
    RETURNING thread_id, run_id
),
thread AS (
    UPDATE agent_server.threads t SET status = 'idle', updated_at = now()
    FROM run WHERE t.thread_id = run.thread_id AND t.status = 'busy' AND NOT EXISTS (
        SELECT 1 FROM agent_server.runs o
        WHERE o.thread_id = run.thread_id AND o.run_id <> run.run_id AND o.status IN ('pending', 'running')
    )
)
SELECT count(*) AS cancelled FROM run
"""
# A graceful stop gives its unfinished runs back to the queue (their threads stay busy).
RELEASE_RUN = (
    "UPDATE agent_server.runs SET status = 'pending', owner = NULL, lease_until = NULL, updated_at = now() "
    "WHERE run_id = %s AND owner = %s AND status = 'running'"
)
ASK_CANCEL = "UPDATE agent_server.runs SET cancel = %s WHERE run_id = %s AND status = 'running' RETURNING owner"
# A run that ended without being followed elsewhere stays so: none of its events were stored,
# and none will be (its owner shares only what it is told of before the end, see FINISH_RUN).
WATCH_RUN = (
    "UPDATE agent_server.runs SET watched = true "
    "WHERE run_id = %s AND (status IN ('pending', 'running') OR watched) RETURNING status, owner"
)
INSERT_EVENTS = (
    "INSERT INTO agent_server.run_events (run_id, seq, event, data) "
    "SELECT %s, e.seq, e.event, e.data FROM unnest(%s::int[], %s::text[], %s::jsonb[]) AS e(seq, event, data) "
    "ON CONFLICT (run_id, seq) DO NOTHING"
)
SELECT_EVENTS = (
    "SELECT seq, event, data FROM agent_server.run_events WHERE run_id = %s AND seq >= %s ORDER BY seq LIMIT %s"
)
NEXT_EVENT_SEQ = "SELECT coalesce(max(seq) + 1, 0) AS seq FROM agent_server.run_events WHERE run_id = %s"
# Events of runs that ended long ago: their followers are gone.
DELETE_OLD_EVENTS = """
DELETE FROM agent_server.run_events e USING agent_server.runs r
WHERE e.run_id = r.run_id AND r.status NOT IN ('pending', 'running')
  AND r.updated_at < now() - %s * interval '1 second'
"""
NOTIFY = "SELECT pg_notify(%s, %s)"
# GET /metrics: how many runs wait and execute, across every server on the database.
COUNT_ACTIVE_RUNS = (
    "SELECT status, count(*) AS count FROM agent_server.runs WHERE status IN ('pending', 'running') GROUP BY status"
)
