"""Assistants: a served graph plus a saved config, context and metadata, versioned as in the LangGraph API.

Every configured graph has a default ("system") assistant whose id is derived from the
graph id exactly as the LangGraph API derives it, so clients that pass a graph id where an
assistant id is expected (the SDK, RemoteGraph) reach the same assistant on either server.
Every create and patch writes a new version; `set_latest` makes an older one current again.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.utils import create_model
from langgraph.pregel import Pregel
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from pydantic import TypeAdapter

from src.services.database import Pool
from src.services.errors import Conflict, InvalidRequest, NotFound, ServiceError
from src.services.graphs import GraphFactoryError, GraphRegistry
from src.services.repository import Record, Repository, now
from src.services.serialization import to_jsonable
from src.services.validation import (
    choice,
    integer,
    json_contains,
    json_type,
    optional_object,
    optional_string,
    query_flag,
    reject_unknown,
    require_object,
)

logger = logging.getLogger(__name__)
Connection = AsyncConnection[DictRow]

# The namespace the LangGraph API derives default assistant ids from: uuid5(NAMESPACE_GRAPH, graph_id).
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
SYSTEM_METADATA: dict[str, Any] = {"created_by": "system"}
DEFAULT_NAME = "Untitled"
IF_EXISTS = ("raise", "do_nothing")
ASSISTANT_FIELDS = (
    "assistant_id",
    "graph_id",
    "name",
    "description",
    "config",
    "context",
    "created_at",
    "updated_at",
    "metadata",
    "version",
)
VERSIONED_FIELDS = ("graph_id", "name", "description", "config", "context", "metadata")
SORT_FIELDS = ("assistant_id", "created_at", "updated_at", "name", "graph_id")
SORT_ORDERS = ("asc", "desc")
# Every run looks up its assistant, and assistants rarely change: `resolve` keeps what it
# read for this long (one statement less per run). This server's own writes drop the
# entry at once; a change made by another server on the same database shows within it.
RESOLVE_CACHE_SECONDS = 1.0
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
# Keys the LangGraph API leaves out of an assistant's config schema: the server sets them.
EXCLUDED_CONFIG_SCHEMA = ("__pregel_checkpointer", "__pregel_store", "checkpoint_id", "checkpoint_ns", "thread_id")
BOOLEAN_TRUE = ("true", "True")
BOOLEAN_FALSE = ("false", "False")

CREATE_FIELDS = frozenset(
    {"assistant_id", "graph_id", "config", "context", "metadata", "if_exists", "name", "description"}
)
PATCH_FIELDS = frozenset({"graph_id", "config", "context", "metadata", "name", "description"})
SEARCH_FIELDS = frozenset({"metadata", "graph_id", "name", "limit", "offset", "sort_by", "sort_order", "select"})
COUNT_FIELDS = frozenset({"metadata", "graph_id", "name"})
VERSIONS_FIELDS = frozenset({"metadata", "limit", "offset"})
LATEST_FIELDS = frozenset({"version"})

# --- SQL (agent_server schema; tables created by the second entry of repository.MIGRATIONS) ---

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
SELECT_NEXT_ASSISTANT_VERSION = (
    "SELECT coalesce(max(version), 0) + 1 AS version FROM agent_server.assistant_versions WHERE assistant_id = %s"
)
UPDATE_ASSISTANT = (
    "UPDATE agent_server.assistants SET graph_id = %s, name = %s, description = %s, config = %s, context = %s, "
    f"metadata = %s, version = %s, updated_at = %s WHERE assistant_id = %s RETURNING {ASSISTANT_COLUMNS}"
)
DELETE_ASSISTANT = "DELETE FROM agent_server.assistants WHERE assistant_id = %s"  # versions cascade
# Parameters: served graph ids, graph_id twice, name twice, metadata (containment).
ASSISTANT_FILTER = (
    "graph_id = ANY(%s) AND (%s::text IS NULL OR graph_id = %s) "
    "AND (%s::text IS NULL OR strpos(lower(name), lower(%s)) > 0) AND metadata @> %s"
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
SET_LATEST_ASSISTANT_VERSION = (
    "UPDATE agent_server.assistants AS a SET graph_id = v.graph_id, name = v.name, description = v.description, "
    "config = v.config, context = v.context, metadata = v.metadata, version = v.version, updated_at = now() "
    "FROM agent_server.assistant_versions AS v "
    "WHERE a.assistant_id = %s AND v.assistant_id = a.assistant_id AND v.version = %s "
    f"RETURNING {ASSISTANT_COLUMNS_OF_A}"
)


CONFIGURABLE_AND_CONTEXT = (
    "Cannot specify both configurable and context. Prefer setting context alone. Context was introduced "
    "in LangGraph 0.6.0 and is the long term planned replacement for configurable."
)


class AssistantNotFound(NotFound):
    def __init__(self, assistant_id: str) -> None:
        super().__init__(f"Assistant {assistant_id!r} not found")


class AssistantBadRequest(ServiceError):
    """A request the LangGraph API answers with 400 (not in the web layer's table, so 400)."""


def default_assistant_id(graph_id: str) -> str:
    """The id of a graph's default assistant, the same as the LangGraph API's."""
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))


def apply_patch(current: Record, changes: Mapping[str, Any]) -> Record:
    """The versioned fields after a patch. Metadata merges; the other given fields replace. As in the
    LangGraph API, `config.configurable` and `context` mirror each other when only one is given."""
    updated = {key: copy.deepcopy(current[key]) for key in VERSIONED_FIELDS}
    for key, value in changes.items():
        if key == "metadata":
            updated["metadata"] = {**updated["metadata"], **copy.deepcopy(value)}
        elif key not in ("config", "context"):
            updated[key] = copy.deepcopy(value)
    if "config" in changes or "context" in changes:
        config = copy.deepcopy(changes["config"]) if "config" in changes else updated["config"]
        context = copy.deepcopy(changes.get("context"))
        configurable = config.get("configurable") if "config" in changes else None
        if configurable:  # the service refuses a configurable and a context together
            context = copy.deepcopy(configurable)
        elif context:
            config = {**config, "configurable": copy.deepcopy(context)}
        updated["config"] = config
        if context is not None:
            updated["context"] = context
    return updated


@dataclass(frozen=True)
class AssistantFilter:
    """Which assistants a search or count sees: only those of `graph_ids` (the served graphs)."""

    graph_ids: list[str]
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def matches(self, record: Record) -> bool:
        return (
            record["graph_id"] in self.graph_ids
            and (self.graph_id is None or record["graph_id"] == self.graph_id)
            and (self.name is None or self.name.lower() in record["name"].lower())
            and json_contains(record["metadata"], self.metadata)
        )

    def params(self) -> tuple[Any, ...]:
        return (self.graph_ids, self.graph_id, self.graph_id, self.name, self.name, Jsonb(self.metadata))


class AssistantRepository(ABC):
    """Assistants and their versions. Implementations must be safe for concurrent coroutines."""

    @abstractmethod
    async def create(self, assistant: Record) -> Record | None:
        """Insert an assistant (the VERSIONED_FIELDS plus assistant_id) as version 1; None when the id is taken."""

    @abstractmethod
    async def get(self, assistant_id: str) -> Record | None: ...

    @abstractmethod
    async def patch(self, assistant_id: str, changes: Mapping[str, Any]) -> Record | None:
        """Apply `apply_patch` as a new version (one past the highest) and make it current; None if absent."""

    @abstractmethod
    async def delete(self, assistant_id: str) -> bool:
        """Delete the assistant and all its versions; False when there was none."""

    @abstractmethod
    async def search(
        self, where: AssistantFilter, *, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[Record]: ...

    @abstractmethod
    async def count(self, where: AssistantFilter) -> int: ...

    @abstractmethod
    async def versions(self, assistant_id: str, metadata: dict[str, Any], limit: int, offset: int) -> list[Record]:
        """The assistant's versions, newest first, whose metadata contains `metadata`."""

    @abstractmethod
    async def set_latest(self, assistant_id: str, version: int) -> Record | None:
        """Make a stored version current; None when the assistant or the version does not exist."""


class MemoryAssistantRepository(AssistantRepository):
    """In-process dictionaries; coroutines on one loop need no lock between awaits."""

    def __init__(self) -> None:
        self._assistants: dict[str, Record] = {}
        self._versions: dict[str, list[Record]] = {}

    @staticmethod
    def _version_of(assistant: Record, created_at: datetime) -> Record:
        return {
            "assistant_id": assistant["assistant_id"],
            "version": assistant["version"],
            **{key: copy.deepcopy(assistant[key]) for key in VERSIONED_FIELDS},
            "created_at": created_at,
        }

    async def create(self, assistant: Record) -> Record | None:
        assistant_id = assistant["assistant_id"]
        if assistant_id in self._assistants:
            return None
        stamp = now()
        stored = {
            "assistant_id": assistant_id,
            **{key: copy.deepcopy(assistant[key]) for key in VERSIONED_FIELDS},
            "version": 1,
            "created_at": stamp,
            "updated_at": stamp,
        }
        self._assistants[assistant_id] = stored
        self._versions[assistant_id] = [self._version_of(stored, stamp)]
        return copy.deepcopy(stored)

    async def get(self, assistant_id: str) -> Record | None:
        assistant = self._assistants.get(assistant_id)
        return copy.deepcopy(assistant) if assistant is not None else None

    async def patch(self, assistant_id: str, changes: Mapping[str, Any]) -> Record | None:
        assistant = self._assistants.get(assistant_id)
        if assistant is None:
            return None
        stamp = now()
        versions = self._versions[assistant_id]
        assistant.update(apply_patch(assistant, changes))
        assistant.update(version=max(v["version"] for v in versions) + 1, updated_at=stamp)
        versions.append(self._version_of(assistant, stamp))
        return copy.deepcopy(assistant)

    async def delete(self, assistant_id: str) -> bool:
        self._versions.pop(assistant_id, None)
        return self._assistants.pop(assistant_id, None) is not None

    async def search(
        self, where: AssistantFilter, *, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[Record]:
        found = [a for a in self._assistants.values() if where.matches(a)]
        found.sort(key=lambda a: (a[sort_by], a["assistant_id"]), reverse=sort_order == "desc")
        return copy.deepcopy(found[offset : offset + limit])

    async def count(self, where: AssistantFilter) -> int:
        return sum(1 for a in self._assistants.values() if where.matches(a))

    async def versions(self, assistant_id: str, metadata: dict[str, Any], limit: int, offset: int) -> list[Record]:
        found = [v for v in self._versions.get(assistant_id, []) if json_contains(v["metadata"], metadata)]
        found.sort(key=lambda v: v["version"], reverse=True)
        return copy.deepcopy(found[offset : offset + limit])

    async def set_latest(self, assistant_id: str, version: int) -> Record | None:
        assistant = self._assistants.get(assistant_id)
        chosen = next((v for v in self._versions.get(assistant_id, []) if v["version"] == version), None)
        if assistant is None or chosen is None:
            return None
        assistant.update({key: copy.deepcopy(chosen[key]) for key in VERSIONED_FIELDS})
        assistant.update(version=version, updated_at=now())
        return copy.deepcopy(assistant)


class PostgresAssistantRepository(AssistantRepository):
    """Tables `agent_server.assistants` and `agent_server.assistant_versions`, on the shared pool."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @staticmethod
    async def _fetch(conn: Connection, query: str, params: tuple[Any, ...]) -> Record | None:
        cursor = await conn.execute(query, params)  # type: ignore[arg-type]  # module constants
        return await cursor.fetchone()  # type: ignore[return-value]  # pool uses dict_row

    @staticmethod
    async def _exec(conn: Connection, query: str, params: tuple[Any, ...]) -> int:
        cursor = await conn.execute(query, params)  # type: ignore[arg-type]  # module constants
        return cursor.rowcount

    async def _one(self, query: str, params: tuple[Any, ...]) -> Record | None:
        async with self._pool.connection() as conn:
            return await self._fetch(conn, query, params)

    async def _all(self, query: str, params: tuple[Any, ...]) -> list[Record]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, params)  # type: ignore[arg-type]  # module constants
            return await cursor.fetchall()  # type: ignore[return-value]  # pool uses dict_row

    @staticmethod
    def _version_params(assistant: Record, created_at: datetime) -> tuple[Any, ...]:
        return (
            assistant["assistant_id"],
            assistant["version"],
            assistant["graph_id"],
            assistant["name"],
            assistant["description"],
            Jsonb(assistant["config"]),
            Jsonb(assistant["context"]),
            Jsonb(assistant["metadata"]),
            created_at,
        )

    async def create(self, assistant: Record) -> Record | None:
        async with self._pool.connection() as conn, conn.transaction():
            created = await self._fetch(
                conn,
                INSERT_ASSISTANT,
                (
                    assistant["assistant_id"],
                    assistant["graph_id"],
                    assistant["name"],
                    assistant["description"],
                    Jsonb(assistant["config"]),
                    Jsonb(assistant["context"]),
                    Jsonb(assistant["metadata"]),
                ),
            )
            if created is None:
                return None
            await self._exec(conn, INSERT_ASSISTANT_VERSION, self._version_params(created, created["created_at"]))
            return created

    async def get(self, assistant_id: str) -> Record | None:
        return await self._one(SELECT_ASSISTANT, (assistant_id,))

    async def patch(self, assistant_id: str, changes: Mapping[str, Any]) -> Record | None:
        async with self._pool.connection() as conn, conn.transaction():
            current = await self._fetch(conn, SELECT_ASSISTANT_FOR_UPDATE, (assistant_id,))
            if current is None:
                return None
            row = await self._fetch(conn, SELECT_NEXT_ASSISTANT_VERSION, (assistant_id,))
            assert row is not None  # an aggregate always returns a row
            stamp = now()
            updated = {**apply_patch(current, changes), "assistant_id": assistant_id, "version": row["version"]}
            await self._exec(conn, INSERT_ASSISTANT_VERSION, self._version_params(updated, stamp))
            return await self._fetch(
                conn,
                UPDATE_ASSISTANT,
                (
                    updated["graph_id"],
                    updated["name"],
                    updated["description"],
                    Jsonb(updated["config"]),
                    Jsonb(updated["context"]),
                    Jsonb(updated["metadata"]),
                    updated["version"],
                    stamp,
                    assistant_id,
                ),
            )

    async def delete(self, assistant_id: str) -> bool:
        async with self._pool.connection() as conn:
            return await self._exec(conn, DELETE_ASSISTANT, (assistant_id,)) > 0

    async def search(
        self, where: AssistantFilter, *, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[Record]:
        return await self._all(SEARCH_ASSISTANTS[(sort_by, sort_order)], (*where.params(), limit, offset))

    async def count(self, where: AssistantFilter) -> int:
        row = await self._one(COUNT_ASSISTANTS, where.params())
        return int(row["count"]) if row is not None else 0

    async def versions(self, assistant_id: str, metadata: dict[str, Any], limit: int, offset: int) -> list[Record]:
        return await self._all(SELECT_ASSISTANT_VERSIONS, (assistant_id, Jsonb(metadata), limit, offset))

    async def set_latest(self, assistant_id: str, version: int) -> Record | None:
        return await self._one(SET_LATEST_ASSISTANT_VERSION, (assistant_id, version))


async def init_assistant_repository(pool: Pool | None, repository: Repository) -> AsyncIterator[AssistantRepository]:
    """Resource: the assistant repository for the backend. `repository` is only an ordering
    dependency: its resource has applied the migrations that create the tables used here."""
    del repository
    yield MemoryAssistantRepository() if pool is None else PostgresAssistantRepository(pool)


# --- public shapes and graph introspection ---


def public_assistant(record: Record) -> dict[str, Any]:
    """An assistant (or, with no updated_at, one of its versions) as the LangGraph API returns it."""
    shaped = {
        "assistant_id": record["assistant_id"],
        "graph_id": record["graph_id"],
        "config": record["config"],
        "context": record["context"],
        "metadata": record["metadata"],
        "name": record["name"],
        "description": record["description"],
        "version": record["version"],
        "created_at": to_jsonable(record["created_at"]),
    }
    if "updated_at" in record:
        shaped["updated_at"] = to_jsonable(record["updated_at"])
    return shaped


def _attempt(graph: Any, what: str, compute: Callable[[], Any]) -> Any:
    """A schema, or None (logged) when the graph cannot describe it, as the LangGraph API does."""
    try:
        return compute()
    except Exception as exc:
        reason = " ".join(str(exc).split())
        logger.warning("cannot build the %s schema of graph %s: %s: %s", what, graph.name, type(exc).__name__, reason)
        return None


def _state_jsonschema(graph: Pregel) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in graph.stream_channels_list:
        update_type = getattr(graph.channels[key], "UpdateType", Any)  # managed values have none
        try:
            create_model(key, __root__=(update_type, None)).model_json_schema()
            fields[key] = (update_type, None)
        except Exception:
            fields[key] = (Any, None)
    return create_model(graph.get_name("State"), **fields).model_json_schema()


def _configurable_jsonschema(graph: Pregel) -> dict[str, Any]:
    """The `configurable` part of the config schema: the graph's context schema, less server-set keys."""
    if graph.context_schema is None:
        return {}
    schema: dict[str, Any] = TypeAdapter(graph.context_schema).json_schema()
    for key in EXCLUDED_CONFIG_SCHEMA:
        schema.get("properties", {}).pop(key, None)
    return schema


def graph_schemas(graph: Pregel) -> dict[str, Any]:
    """input/output/state/config/context JSON schemas; each None when it cannot be built."""
    return {
        "input_schema": _attempt(graph, "input", graph.get_input_jsonschema),
        "output_schema": _attempt(graph, "output", graph.get_output_jsonschema),
        "state_schema": _attempt(graph, "state", lambda: _state_jsonschema(graph)),
        "config_schema": _attempt(graph, "config", lambda: _configurable_jsonschema(graph)),
        "context_schema": _attempt(graph, "context", graph.get_context_jsonschema),
    }


# --- request validation ---


def _config(body: dict[str, Any]) -> dict[str, Any] | None:
    """The LangGraph API's Config schema: tags (strings), recursion_limit (integer), configurable (object)."""
    config = optional_object(body, "config")
    if config is None:
        return None
    tags = config.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags)):
        raise InvalidRequest("config.tags must be a list of strings")
    limit = config.get("recursion_limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise InvalidRequest(f"config.recursion_limit must be an integer, got {json_type(limit)}")
    configurable = config.get("configurable")
    if configurable is not None and not isinstance(configurable, dict):
        raise InvalidRequest(f"config.configurable must be an object, got {json_type(configurable)}")
    return config


def _consolidate(
    config: dict[str, Any] | None, context: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keep `config.configurable` and `context` the same, as the LangGraph API does; both given is a 400."""
    config = copy.deepcopy(config or {})
    configurable = config.get("configurable")
    if configurable and context:
        raise AssistantBadRequest(CONFIGURABLE_AND_CONTEXT)
    if configurable:
        return config, copy.deepcopy(configurable)
    if context:
        config["configurable"] = copy.deepcopy(context)
    return config, copy.deepcopy(context or {})


def _xray(value: str | None) -> bool | int:
    """The `xray` query parameter as the LangGraph API reads it: a boolean or a positive depth."""
    if not value or value in BOOLEAN_FALSE:
        return False
    if value in BOOLEAN_TRUE:
        return True
    try:
        depth = int(value)
    except ValueError:
        raise InvalidRequest("Invalid xray value") from None
    if depth <= 0:
        raise InvalidRequest("Invalid xray value")
    return depth


class AssistantService:
    """The /assistants API. Default assistants are written on first use (and again after a restart
    if missing); anywhere an assistant id is accepted, a served graph id means its default assistant."""

    def __init__(self, repository: AssistantRepository, graphs: GraphRegistry) -> None:
        self._repository = repository
        self._graphs = graphs
        self._defaults_ready = False
        self._defaults_lock = asyncio.Lock()
        self._resolved: dict[str, tuple[float, Record]] = {}
        # Served graph id -> its default assistant's id, computed once (a uuid5 per run otherwise).
        self._default_ids = {graph_id: default_assistant_id(graph_id) for graph_id in graphs.ids}

    # --- default assistants ---

    async def ensure_defaults(self) -> None:
        """Create each served graph's default assistant unless it exists (idempotent, concurrent-safe)."""
        if self._defaults_ready:
            return
        async with self._defaults_lock:
            if self._defaults_ready:
                return
            for graph_id, assistant_id in self._default_ids.items():
                created = await self._repository.create(
                    {
                        "assistant_id": assistant_id,
                        "graph_id": graph_id,
                        "name": graph_id,
                        "description": None,
                        "config": {},
                        "context": {},
                        "metadata": dict(SYSTEM_METADATA),
                    }
                )
                if created is None:
                    existing = await self._repository.get(assistant_id)
                    if existing is not None and existing["name"] != graph_id:
                        await self._repository.patch(assistant_id, {"name": graph_id})  # as the LangGraph API
            self._defaults_ready = True

    # --- lookups ---

    def _served(self) -> str:
        return ", ".join(self._graphs.ids) or "none"

    def _path_id(self, value: str) -> str:
        """An assistant id from a path: a served graph id means its default assistant; else a UUID (422)."""
        if value in self._default_ids:
            return self._default_ids[value]
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise InvalidRequest(
                f"Invalid assistant ID {value!r}: must be a UUID or one of the graph ids this server serves "
                f"({self._served()})"
            ) from None

    async def _record(self, assistant_id: str, shown: str) -> Record:
        await self.ensure_defaults()
        record = await self._repository.get(assistant_id)
        # An assistant of a graph this server no longer serves is hidden, as in the LangGraph API.
        if record is None or record["graph_id"] not in self._graphs:
            raise AssistantNotFound(shown)
        return record

    async def _record_at(self, value: str) -> Record:
        return await self._record(self._path_id(value), value)

    def _require_graph(self, graph_id: str) -> None:
        if graph_id not in self._graphs:
            raise NotFound(f"Graph {graph_id!r} not found. Expected one of: {self._graphs.ids}")

    async def resolve(self, assistant_id_or_graph_id: str) -> dict[str, Any]:
        """The assistant a run names (an assistant id, or a graph id for its default assistant),
        in its public shape (graph_id, config, context, metadata, version, ...); NotFound otherwise."""
        value = str(assistant_id_or_graph_id)
        if value in self._default_ids:
            assistant_id = self._default_ids[value]
        else:
            try:
                assistant_id = str(uuid.UUID(value))
            except ValueError:
                raise NotFound(
                    f"Assistant {value!r} not found; pass an assistant id or one of the graph ids this server "
                    f"serves: {self._served()}"
                ) from None
        cached = self._resolved.get(assistant_id)
        if cached is not None and time.monotonic() - cached[0] < RESOLVE_CACHE_SECONDS:
            record = cached[1]
        else:
            record = await self._record(assistant_id, value)
            self._resolved[assistant_id] = (time.monotonic(), record)
        # A copy: the run merges its own config into what it gets.
        return copy.deepcopy(public_assistant(record))

    def _changed(self, assistant_id: str) -> None:
        self._resolved.pop(assistant_id, None)

    async def _graph_of(self, record: Record) -> Pregel:
        config = copy.deepcopy(record["config"])
        config.setdefault("configurable", {})
        try:
            return await self._graphs.get(record["graph_id"], cast(RunnableConfig, config))
        except GraphFactoryError as exc:
            raise InvalidRequest(str(exc)) from None

    # --- CRUD ---

    async def create(self, payload: Any) -> dict[str, Any]:
        body = require_object(payload)
        reject_unknown(body, CREATE_FIELDS)
        graph_id = optional_string(body, "graph_id", required=True)
        assert graph_id is not None
        raw_id = body.get("assistant_id")
        assistant_id = str(uuid.uuid4())
        if raw_id is not None:
            try:
                assistant_id = str(uuid.UUID(raw_id if isinstance(raw_id, str) else ""))
            except ValueError:
                raise InvalidRequest("Invalid assistant ID: must be a UUID") from None
        config = _config(body)
        context = optional_object(body, "context")
        metadata = optional_object(body, "metadata") or {}
        if_exists = choice(body, "if_exists", IF_EXISTS, "raise")
        name = optional_string(body, "name") or DEFAULT_NAME
        description = optional_string(body, "description")
        self._require_graph(graph_id)
        config, context = _consolidate(config, context)
        await self.ensure_defaults()
        created = await self._repository.create(
            {
                "assistant_id": assistant_id,
                "graph_id": graph_id,
                "name": name,
                "description": description,
                "config": config,
                "context": context,
                "metadata": metadata,
            }
        )
        if created is not None:
            return public_assistant(created)
        if if_exists == "raise":
            raise Conflict(f"Assistant {assistant_id!r} already exists")
        existing = await self._repository.get(assistant_id)
        if existing is None:  # deleted in between
            raise Conflict(f"Assistant {assistant_id!r} was changed concurrently; retry")
        return public_assistant(existing)

    async def get(self, assistant_id: str) -> dict[str, Any]:
        return public_assistant(await self._record_at(assistant_id))

    async def patch(self, assistant_id: str, payload: Any) -> dict[str, Any]:
        body = require_object(payload)
        reject_unknown(body, PATCH_FIELDS)
        graph_id = optional_string(body, "graph_id")
        config = _config(body)
        context = optional_object(body, "context")
        metadata = optional_object(body, "metadata")
        name = optional_string(body, "name")
        description = optional_string(body, "description")
        if graph_id is not None:
            self._require_graph(graph_id)
        if config and config.get("configurable") and context:
            raise AssistantBadRequest(CONFIGURABLE_AND_CONTEXT)
        record = await self._record_at(assistant_id)
        changes: dict[str, Any] = {
            key: value
            for key, value in (
                ("graph_id", graph_id),
                ("config", config),
                ("context", context),
                ("metadata", metadata),
                ("name", name),
                ("description", description),
            )
            if value is not None
        }
        patched = await self._repository.patch(record["assistant_id"], changes)
        self._changed(record["assistant_id"])
        if patched is None:
            raise AssistantNotFound(assistant_id)
        return public_assistant(patched)

    async def delete(self, assistant_id: str, delete_threads: str | None = None) -> None:
        """Delete the assistant and all its versions. A default assistant can be deleted too (as in the
        LangGraph API); it is created again when the server next starts."""
        if bool(query_flag(delete_threads, "delete_threads")):
            raise InvalidRequest("delete_threads is not supported by this server yet")
        record = await self._record_at(assistant_id)
        deleted = await self._repository.delete(record["assistant_id"])
        self._changed(record["assistant_id"])
        if not deleted:
            raise AssistantNotFound(assistant_id)

    def _filter(self, body: dict[str, Any]) -> AssistantFilter:
        graph_id = optional_string(body, "graph_id")
        if graph_id is not None:
            self._require_graph(graph_id)
        return AssistantFilter(
            graph_ids=self._graphs.ids,
            graph_id=graph_id,
            name=optional_string(body, "name"),
            metadata=optional_object(body, "metadata") or {},
        )

    async def search(self, payload: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Matching assistants and the LangGraph API's X-Pagination-* headers."""
        body = require_object(payload)
        reject_unknown(body, SEARCH_FIELDS)
        limit = integer(body, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = integer(body, "offset", 0, 0)
        sort_by = choice(body, "sort_by", SORT_FIELDS, "created_at")
        sort_order = choice(body, "sort_order", SORT_ORDERS, "desc")
        select = body.get("select")
        if select is not None:
            if not isinstance(select, list) or not all(isinstance(column, str) for column in select):
                raise InvalidRequest("select must be a list of field names")
            invalid = [column for column in select if column not in ASSISTANT_FIELDS]
            if invalid:
                raise InvalidRequest(f"Invalid select columns: {invalid}. Expected: {', '.join(ASSISTANT_FIELDS)}")
        where = self._filter(body)
        await self.ensure_defaults()
        found = await self._repository.search(
            where, limit=limit + 1, offset=offset, sort_by=sort_by, sort_order=sort_order
        )
        more = len(found) > limit
        assistants = [public_assistant(record) for record in found[:limit]]
        if select:
            assistants = [{key: value for key, value in a.items() if key in select} for a in assistants]
        if more:
            headers = {"X-Pagination-Total": str(offset + limit + 1), "X-Pagination-Next": str(offset + limit)}
        else:
            headers = {"X-Pagination-Total": str(offset + len(assistants))}
        return assistants, headers

    async def count(self, payload: Any) -> int:
        body = require_object(payload)
        reject_unknown(body, COUNT_FIELDS)
        where = self._filter(body)
        await self.ensure_defaults()
        return await self._repository.count(where)

    # --- the graph behind an assistant ---

    async def graph(self, assistant_id: str, xray: str | None = None) -> dict[str, Any]:
        depth = _xray(xray)
        graph = await self._graph_of(await self._record_at(assistant_id))
        try:
            drawable = await graph.aget_graph(xray=depth)
        except NotImplementedError:
            raise InvalidRequest("The graph does not support visualization") from None
        shaped: dict[str, Any] = to_jsonable(drawable.to_json())
        for node in shaped.get("nodes", []):
            if isinstance(node.get("data"), dict):
                node["data"].pop("id", None)
        return shaped

    async def schemas(self, assistant_id: str) -> dict[str, Any]:
        record = await self._record_at(assistant_id)
        graph = await self._graph_of(record)
        schemas = await asyncio.to_thread(graph_schemas, graph)  # pydantic work: keep the loop free
        return {"graph_id": record["graph_id"], **to_jsonable(schemas)}

    async def subgraphs(
        self, assistant_id: str, namespace: str | None = None, recurse: str | None = None
    ) -> dict[str, Any]:
        recursive = bool(query_flag(recurse, "recurse"))
        graph = await self._graph_of(await self._record_at(assistant_id))
        try:
            found = [(ns, sub) async for ns, sub in graph.aget_subgraphs(namespace=namespace, recurse=recursive)]
        except NotImplementedError:
            raise InvalidRequest("The graph does not support visualization") from None

        def describe() -> dict[str, Any]:
            return {ns: graph_schemas(cast(Pregel, sub)) for ns, sub in found}

        return cast(dict[str, Any], to_jsonable(await asyncio.to_thread(describe)))

    # --- versions ---

    async def versions(self, assistant_id: str, payload: Any) -> list[dict[str, Any]]:
        body = require_object(payload)
        reject_unknown(body, VERSIONS_FIELDS)
        metadata = optional_object(body, "metadata") or {}
        limit = integer(body, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = integer(body, "offset", 0, 0)
        record = await self._record_at(assistant_id)
        found = await self._repository.versions(record["assistant_id"], metadata, limit, offset)
        if not found:
            raise NotFound(f"Assistant {assistant_id!r} has no versions matching the request")
        return [public_assistant(version) for version in found]

    async def set_latest(self, assistant_id: str, payload: Any, version: str | None = None) -> dict[str, Any]:
        """Make a stored version current; the version comes in the body (as the SDK sends it) or the query."""
        body = require_object(payload)
        reject_unknown(body, LATEST_FIELDS)
        if body.get("version") is None and version is not None:
            try:
                body = {"version": int(version)}
            except ValueError:
                raise InvalidRequest(f"version must be an integer, got {version!r}") from None
        if body.get("version") is None:
            raise InvalidRequest("version is required")
        chosen = integer(body, "version", 0, 1)
        record = await self._record_at(assistant_id)
        updated = await self._repository.set_latest(record["assistant_id"], chosen)
        self._changed(record["assistant_id"])
        if updated is None:
            raise NotFound(f"Assistant {assistant_id!r} has no version {chosen}")
        return public_assistant(updated)
