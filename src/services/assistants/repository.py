"""Where assistants and their versions live: in memory, or in the `agent_server` tables (sql.py).

Every create and patch writes a new version; `set_latest` makes an older one current again.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from psycopg.types.json import Jsonb

from src.services.assistants.models import VERSIONED_FIELDS, AssistantFilter, AssistantRecord
from src.services.assistants.sql import (
    COUNT_ASSISTANTS,
    DELETE_ASSISTANT,
    INSERT_ASSISTANT,
    INSERT_ASSISTANT_VERSION,
    SEARCH_ASSISTANTS,
    SELECT_ASSISTANT,
    SELECT_ASSISTANT_FOR_UPDATE,
    SELECT_ASSISTANT_VERSIONS,
    SELECT_NEXT_ASSISTANT_VERSION,
    SELECT_VISIBLE_ASSISTANT,
    SELECT_VISIBLE_ASSISTANT_VERSIONS,
    SET_LATEST_ASSISTANT_VERSION,
    UPDATE_ASSISTANT,
)
from src.services.auth.filters import Visibility
from src.services.database import Connection, PostgresRecords
from src.services.threads.repository import now
from src.services.validation import json_contains

Record = dict[str, Any]


def typed(record: Mapping[str, Any] | None) -> AssistantRecord | None:
    """A row or stored dict as the record type the repository promises (the columns match)."""
    return cast(AssistantRecord | None, record)


def typed_all(records: list[Record]) -> list[AssistantRecord]:
    return cast(list[AssistantRecord], records)


def apply_patch(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
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


def matches(where: AssistantFilter, record: Mapping[str, Any]) -> bool:
    return (
        record["graph_id"] in where.graph_ids
        and (where.graph_id is None or record["graph_id"] == where.graph_id)
        and (where.name is None or where.name.lower() in record["name"].lower())
        and json_contains(record["metadata"], where.metadata)
        and (where.visible is None or where.visible.matches(record["metadata"]))
    )


def visible_params(visible: Visibility | None) -> tuple[Any, ...]:
    """The parameters of ASSISTANT_VISIBLE: the caller's auth filter and what it implies (auth/sql.py)."""
    if visible is None:
        return (None, None, None)
    exact = Jsonb(visible.as_json())
    return (exact, [Jsonb(document) for document in visible.containments()], exact)


def filter_params(where: AssistantFilter) -> tuple[Any, ...]:
    common = (where.graph_ids, where.graph_id, where.graph_id, where.name, where.name, Jsonb(where.metadata))
    return common + visible_params(where.visible)


class AssistantRepository(ABC):
    """Assistants and their versions. Implementations must be safe for concurrent coroutines."""

    @abstractmethod
    async def create(self, assistant: Record) -> AssistantRecord | None:
        """Insert an assistant (the VERSIONED_FIELDS plus assistant_id) as version 1; None when the id is taken."""

    @abstractmethod
    async def get(self, assistant_id: str, visible: Visibility | None = None) -> AssistantRecord | None:
        """The assistant; None when there is none, or when `visible` (the caller's auth filter) hides it."""

    @abstractmethod
    async def patch(self, assistant_id: str, changes: Mapping[str, Any]) -> AssistantRecord | None:
        """Apply `apply_patch` as a new version (one past the highest) and make it current; None if absent."""

    @abstractmethod
    async def delete(self, assistant_id: str) -> bool:
        """Delete the assistant and all its versions; False when there was none."""

    @abstractmethod
    async def search(
        self, where: AssistantFilter, *, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[AssistantRecord]: ...

    @abstractmethod
    async def count(self, where: AssistantFilter) -> int: ...

    @abstractmethod
    async def versions(
        self, assistant_id: str, metadata: dict[str, Any], limit: int, offset: int, visible: Visibility | None = None
    ) -> list[AssistantRecord]:
        """The assistant's versions, newest first, whose metadata contains `metadata` (and passes `visible`)."""

    @abstractmethod
    async def set_latest(self, assistant_id: str, version: int) -> AssistantRecord | None:
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

    async def create(self, assistant: Record) -> AssistantRecord | None:
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
        return typed(copy.deepcopy(stored))

    async def get(self, assistant_id: str, visible: Visibility | None = None) -> AssistantRecord | None:
        assistant = self._assistants.get(assistant_id)
        if assistant is None or (visible is not None and not visible.matches(assistant["metadata"])):
            return None
        return typed(copy.deepcopy(assistant))

    async def patch(self, assistant_id: str, changes: Mapping[str, Any]) -> AssistantRecord | None:
        assistant = self._assistants.get(assistant_id)
        if assistant is None:
            return None
        stamp = now()
        versions = self._versions[assistant_id]
        assistant.update(apply_patch(assistant, changes))
        assistant.update(version=max(v["version"] for v in versions) + 1, updated_at=stamp)
        versions.append(self._version_of(assistant, stamp))
        return typed(copy.deepcopy(assistant))

    async def delete(self, assistant_id: str) -> bool:
        self._versions.pop(assistant_id, None)
        return self._assistants.pop(assistant_id, None) is not None

    async def search(
        self, where: AssistantFilter, *, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[AssistantRecord]:
        found = [a for a in self._assistants.values() if matches(where, a)]
        found.sort(key=lambda a: (a[sort_by], a["assistant_id"]), reverse=sort_order == "desc")
        return typed_all(copy.deepcopy(found[offset : offset + limit]))

    async def count(self, where: AssistantFilter) -> int:
        return sum(1 for a in self._assistants.values() if matches(where, a))

    async def versions(
        self, assistant_id: str, metadata: dict[str, Any], limit: int, offset: int, visible: Visibility | None = None
    ) -> list[AssistantRecord]:
        found = [
            v
            for v in self._versions.get(assistant_id, [])
            if json_contains(v["metadata"], metadata) and (visible is None or visible.matches(v["metadata"]))
        ]
        found.sort(key=lambda v: v["version"], reverse=True)
        return typed_all(copy.deepcopy(found[offset : offset + limit]))

    async def set_latest(self, assistant_id: str, version: int) -> AssistantRecord | None:
        assistant = self._assistants.get(assistant_id)
        chosen = next((v for v in self._versions.get(assistant_id, []) if v["version"] == version), None)
        if assistant is None or chosen is None:
            return None
        assistant.update({key: copy.deepcopy(chosen[key]) for key in VERSIONED_FIELDS})
        assistant.update(version=version, updated_at=now())
        return typed(copy.deepcopy(assistant))


class PostgresAssistantRepository(PostgresRecords, AssistantRepository):
    """Tables `agent_server.assistants` and `agent_server.assistant_versions`, on the shared pool."""

    @staticmethod
    async def _fetch(conn: Connection, query: str, params: tuple[Any, ...]) -> Record | None:
        return await (await conn.execute(query, params)).fetchone()

    @staticmethod
    def _version_params(assistant: Mapping[str, Any], created_at: datetime) -> tuple[Any, ...]:
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

    async def create(self, assistant: Record) -> AssistantRecord | None:
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
            await conn.execute(INSERT_ASSISTANT_VERSION, self._version_params(created, created["created_at"]))
            return typed(created)

    async def get(self, assistant_id: str, visible: Visibility | None = None) -> AssistantRecord | None:
        if visible is None:
            return typed(await self.one(SELECT_ASSISTANT, (assistant_id,)))
        return typed(await self.one(SELECT_VISIBLE_ASSISTANT, (assistant_id, *visible_params(visible))))

    async def patch(self, assistant_id: str, changes: Mapping[str, Any]) -> AssistantRecord | None:
        async with self._pool.connection() as conn, conn.transaction():
            current = await self._fetch(conn, SELECT_ASSISTANT_FOR_UPDATE, (assistant_id,))
            if current is None:
                return None
            row = await self._fetch(conn, SELECT_NEXT_ASSISTANT_VERSION, (assistant_id,))
            assert row is not None  # an aggregate always returns a row
            stamp = now()
            updated = {**apply_patch(current, changes), "assistant_id": assistant_id, "version": row["version"]}
            await conn.execute(INSERT_ASSISTANT_VERSION, self._version_params(updated, stamp))
            return typed(
                await self._fetch(
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
            )

    async def delete(self, assistant_id: str) -> bool:
        return await self.execute(DELETE_ASSISTANT, (assistant_id,)) > 0

    async def search(
        self, where: AssistantFilter, *, limit: int, offset: int, sort_by: str, sort_order: str
    ) -> list[AssistantRecord]:
        return typed_all(
            await self.all(SEARCH_ASSISTANTS[(sort_by, sort_order)], (*filter_params(where), limit, offset))
        )

    async def count(self, where: AssistantFilter) -> int:
        row = await self.one(COUNT_ASSISTANTS, filter_params(where))
        return int(row["count"]) if row is not None else 0

    async def versions(
        self, assistant_id: str, metadata: dict[str, Any], limit: int, offset: int, visible: Visibility | None = None
    ) -> list[AssistantRecord]:
        if visible is None:
            return typed_all(await self.all(SELECT_ASSISTANT_VERSIONS, (assistant_id, Jsonb(metadata), limit, offset)))
        params = (assistant_id, Jsonb(metadata), *visible_params(visible), limit, offset)
        return typed_all(await self.all(SELECT_VISIBLE_ASSISTANT_VERSIONS, params))

    async def set_latest(self, assistant_id: str, version: int) -> AssistantRecord | None:
        return typed(await self.one(SET_LATEST_ASSISTANT_VERSION, (assistant_id, version)))
