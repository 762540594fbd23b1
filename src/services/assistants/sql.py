"""The assistants tables (schema `agent_server`): their migration and every statement on them."""

from __future__ import annotations

from src.services.assistants.models import SORT_FIELDS, SORT_ORDERS
from src.services.auth.sql import visible_condition

# Append-only, keyed by schema version (see src/services/schema.py). Never edit an entry
# that has shipped; add a new version.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
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
}

ASSISTANT_COLUMNS = (
    "assistant_id::text, graph_id, name, description, config, context, metadata, version, created_at, updated_at"
)
ASSISTANT_COLUMNS_OF_A = (
    "a.assistant_id::text, a.graph_id, a.name, a.description, a.config, a.context, a.metadata, a.version, "
    "a.created_at, a.updated_at"
)
VERSION_COLUMNS = "assistant_id::text, version, graph_id, name, description, config, context, metadata, created_at"
INSERT_ASSISTANT = (
    "INSERT INTO agent_server.assistants (assistant_id, graph_id, name, description, config, context, metadata) "
    f"VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (assistant_id) DO NOTHING RETURNING {ASSISTANT_COLUMNS}"
)
INSERT_ASSISTANT_VERSION = (
    "INSERT INTO agent_server.assistant_versions "
    "(assistant_id, version, graph_id, name, description, config, context, metadata, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
SELECT_ASSISTANT = f"SELECT {ASSISTANT_COLUMNS} FROM agent_server.assistants WHERE assistant_id = %s"
SELECT_ASSISTANT_FOR_UPDATE = f"{SELECT_ASSISTANT} FOR UPDATE"
# The caller's auth filter on metadata (src/services/auth/sql.py): parameters filter, containment, filter.
ASSISTANT_VISIBLE = visible_condition("metadata", "%s", "%s")
SELECT_VISIBLE_ASSISTANT = f"{SELECT_ASSISTANT} AND {ASSISTANT_VISIBLE}"
SELECT_NEXT_ASSISTANT_VERSION = (
    "SELECT coalesce(max(version), 0) + 1 AS version FROM agent_server.assistant_versions WHERE assistant_id = %s"
)
UPDATE_ASSISTANT = (
    "UPDATE agent_server.assistants SET graph_id = %s, name = %s, description = %s, config = %s, context = %s, "
    f"metadata = %s, version = %s, updated_at = %s WHERE assistant_id = %s RETURNING {ASSISTANT_COLUMNS}"
)
DELETE_ASSISTANT = "DELETE FROM agent_server.assistants WHERE assistant_id = %s"  # versions cascade
# Parameters: served graph ids, graph_id twice, name twice, metadata (containment), auth filter (three).
ASSISTANT_FILTER = (
    "graph_id = ANY(%s) AND (%s::text IS NULL OR graph_id = %s) "
    f"AND (%s::text IS NULL OR strpos(lower(name), lower(%s)) > 0) AND metadata @> %s AND {ASSISTANT_VISIBLE}"
)
# One statement per (sort field, order): identifiers cannot be parameters, and all come from fixed lists.
SEARCH_ASSISTANTS: dict[tuple[str, str], str] = {
    (sort_field, order): (
        f"SELECT {ASSISTANT_COLUMNS} FROM agent_server.assistants WHERE {ASSISTANT_FILTER} "
        f"ORDER BY {sort_field} {order.upper()}, assistant_id {order.upper()} LIMIT %s OFFSET %s"
    )
    for sort_field in SORT_FIELDS
    for order in SORT_ORDERS
}
COUNT_ASSISTANTS = f"SELECT count(*) AS count FROM agent_server.assistants WHERE {ASSISTANT_FILTER}"
SELECT_ASSISTANT_VERSIONS = (
    f"SELECT {VERSION_COLUMNS} FROM agent_server.assistant_versions WHERE assistant_id = %s AND metadata @> %s "
    "ORDER BY version DESC LIMIT %s OFFSET %s"
)
# A version is shown when its own metadata passes the caller's auth filter too (three parameters).
SELECT_VISIBLE_ASSISTANT_VERSIONS = (
    f"SELECT {VERSION_COLUMNS} FROM agent_server.assistant_versions WHERE assistant_id = %s AND metadata @> %s "
    f"AND {ASSISTANT_VISIBLE} ORDER BY version DESC LIMIT %s OFFSET %s"
)
SET_LATEST_ASSISTANT_VERSION = (
    "UPDATE agent_server.assistants AS a SET graph_id = v.graph_id, name = v.name, description = v.description, "
    "config = v.config, context = v.context, metadata = v.metadata, version = v.version, updated_at = now() "
    "FROM agent_server.assistant_versions AS v "
    "WHERE a.assistant_id = %s AND v.assistant_id = a.assistant_id AND v.version = %s "
    f"RETURNING {ASSISTANT_COLUMNS_OF_A}"
)
