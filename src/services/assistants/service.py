"""Assistants: a served graph plus a saved config, context and metadata, versioned as in the LangGraph API.

Every configured graph has a default ("system") assistant whose id is derived from the
graph id exactly as the LangGraph API derives it, so clients that pass a graph id where an
assistant id is expected (the SDK, RemoteGraph) reach the same assistant on either server.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

from langchain_core.runnables import RunnableConfig

from src.services.assistants.models import (
    AssistantCreate,
    AssistantFilter,
    AssistantPage,
    AssistantPatch,
    AssistantQuery,
    AssistantRecord,
    AssistantSearch,
    VersionsQuery,
    default_assistant_id,
)
from src.services.assistants.repository import AssistantRepository
from src.services.assistants.schemas import graph_schemas
from src.services.auth.filters import Visibility
from src.services.errors import Conflict, InvalidRequest, NotFound, ServiceError
from src.services.graphs import Graph, GraphFactoryError, GraphRegistry
from src.services.serialization import to_jsonable

logger = logging.getLogger(__name__)

SYSTEM_METADATA: dict[str, Any] = {"created_by": "system"}
# Every run looks up its assistant, and assistants rarely change: `resolve` keeps what it
# read for this long (one statement less per run). This server's own writes drop the
# entry at once; a change made by another server on the same database shows within it.
RESOLVE_CACHE_SECONDS = 1.0
RESOLVE_CACHE_SIZE = 1024
CONFIGURABLE_AND_CONTEXT = (
    "Cannot specify both configurable and context. Prefer setting context alone. Context was introduced "
    "in LangGraph 0.6.0 and is the long term planned replacement for configurable."
)


class AssistantNotFound(NotFound):
    def __init__(self, assistant_id: str) -> None:
        super().__init__(f"Assistant {assistant_id!r} not found")


class AssistantBadRequest(ServiceError):
    """A request the LangGraph API answers with 400 (not in the web layer's table, so 400)."""


def public_assistant(record: AssistantRecord) -> dict[str, Any]:
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


def consolidate(config: dict[str, Any] | None, context: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
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


class AssistantService:
    """The /assistants API. Anywhere an assistant id is accepted, a served graph id means its
    default assistant; those exist once `ensure_defaults` ran (the `default_assistants` resource)."""

    def __init__(self, repository: AssistantRepository, graphs: GraphRegistry) -> None:
        self._repository = repository
        self._graphs = graphs
        self._defaults_ready = False
        self._defaults_lock = asyncio.Lock()
        self._resolved: dict[str, tuple[float, AssistantRecord]] = {}
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

    def assistant_id(self, value: str) -> str:
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

    async def _record(self, assistant_id: str, shown: str, visible: Visibility | None = None) -> AssistantRecord:
        await self.ensure_defaults()
        # `visible`: the caller's auth filter; an assistant it hides is not found (404).
        record = await self._repository.get(assistant_id, visible)
        # An assistant of a graph this server no longer serves is hidden, as in the LangGraph API.
        if record is None or record["graph_id"] not in self._graphs:
            raise AssistantNotFound(shown)
        return record

    async def _record_at(self, value: str, visible: Visibility | None = None) -> AssistantRecord:
        return await self._record(self.assistant_id(value), value, visible)

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
            if len(self._resolved) >= RESOLVE_CACHE_SIZE:  # assistants are many: keep the latest lookups
                self._resolved.pop(next(iter(self._resolved)))
            self._resolved[assistant_id] = (time.monotonic(), record)
        # A copy: the run merges its own config into what it gets.
        return copy.deepcopy(public_assistant(record))

    def _changed(self, assistant_id: str) -> None:
        self._resolved.pop(assistant_id, None)

    async def _graph_of(self, record: AssistantRecord) -> Graph:
        config = copy.deepcopy(record["config"])
        config.setdefault("configurable", {})
        try:
            return await self._graphs.get(record["graph_id"], cast(RunnableConfig, config))
        except GraphFactoryError as exc:
            raise InvalidRequest(str(exc)) from None

    # --- CRUD ---

    async def create(self, request: AssistantCreate, visible: Visibility | None = None) -> dict[str, Any]:
        self._require_graph(request.graph_id)
        config, context = consolidate(request.config, request.context)
        assistant_id = request.assistant_id or str(uuid.uuid4())
        await self.ensure_defaults()
        created = await self._repository.create(
            {
                "assistant_id": assistant_id,
                "graph_id": request.graph_id,
                "name": request.name,
                "description": request.description,
                "config": config,
                "context": context,
                "metadata": request.metadata,
            }
        )
        if created is not None:
            return public_assistant(created)
        if request.if_exists == "raise":
            raise Conflict(f"Assistant {assistant_id!r} already exists")
        # Another user's assistant is neither returned nor told apart from a taken id.
        existing = await self._repository.get(assistant_id, visible)
        if existing is None and visible is not None:
            raise Conflict(f"Assistant {assistant_id!r} already exists")
        if existing is None:  # deleted in between
            raise Conflict(f"Assistant {assistant_id!r} was changed concurrently; retry")
        return public_assistant(existing)

    async def get(self, assistant_id: str, visible: Visibility | None = None) -> dict[str, Any]:
        return public_assistant(await self._record_at(assistant_id, visible))

    async def patch(
        self, assistant_id: str, request: AssistantPatch, visible: Visibility | None = None
    ) -> dict[str, Any]:
        if request.graph_id is not None:
            self._require_graph(request.graph_id)
        if request.config and request.config.get("configurable") and request.context:
            raise AssistantBadRequest(CONFIGURABLE_AND_CONTEXT)
        record = await self._record_at(assistant_id, visible)
        changes: dict[str, Any] = {
            key: value
            for key, value in (
                ("graph_id", request.graph_id),
                ("config", request.config),
                ("context", request.context),
                ("metadata", request.metadata),
                ("name", request.name),
                ("description", request.description),
            )
            if value is not None
        }
        patched = await self._repository.patch(record["assistant_id"], changes)
        self._changed(record["assistant_id"])
        if patched is None:
            raise AssistantNotFound(assistant_id)
        return public_assistant(patched)

    async def delete(self, assistant_id: str, delete_threads: bool = False, visible: Visibility | None = None) -> None:
        """Delete the assistant and all its versions. A default assistant can be deleted too (as in the
        LangGraph API); it is created again when the server next starts."""
        if delete_threads:
            raise InvalidRequest("delete_threads is not supported by this server yet")
        record = await self._record_at(assistant_id, visible)
        deleted = await self._repository.delete(record["assistant_id"])
        self._changed(record["assistant_id"])
        if not deleted:
            raise AssistantNotFound(assistant_id)

    def _filter(self, query: AssistantQuery) -> AssistantFilter:
        if query.graph_id is not None:
            self._require_graph(query.graph_id)
        return AssistantFilter(
            graph_ids=self._graphs.ids,
            graph_id=query.graph_id,
            name=query.name,
            metadata=query.metadata,
            visible=query.visible,
        )

    async def search(self, request: AssistantSearch) -> AssistantPage:
        """A page of matching assistants, and whether more follow."""
        where = self._filter(request.query)
        await self.ensure_defaults()
        found = await self._repository.search(
            where,
            limit=request.limit + 1,
            offset=request.offset,
            sort_by=request.sort_by,
            sort_order=request.sort_order,
        )
        assistants = [public_assistant(record) for record in found[: request.limit]]
        if request.select:
            assistants = [{key: value for key, value in a.items() if key in request.select} for a in assistants]
        return AssistantPage(assistants, request.offset, request.limit, more=len(found) > request.limit)

    async def count(self, query: AssistantQuery) -> int:
        where = self._filter(query)
        await self.ensure_defaults()
        return await self._repository.count(where)

    # --- the graph behind an assistant ---

    async def graph(
        self, assistant_id: str, xray: bool | int = False, visible: Visibility | None = None
    ) -> dict[str, Any]:
        graph = await self._graph_of(await self._record_at(assistant_id, visible))
        try:
            drawable = await graph.aget_graph(xray=xray)
        except NotImplementedError:
            raise InvalidRequest("The graph does not support visualization") from None
        shaped: dict[str, Any] = to_jsonable(drawable.to_json())
        for node in shaped.get("nodes", []):
            if isinstance(node.get("data"), dict):
                node["data"].pop("id", None)
        return shaped

    async def schemas(self, assistant_id: str, visible: Visibility | None = None) -> dict[str, Any]:
        record = await self._record_at(assistant_id, visible)
        graph = await self._graph_of(record)
        schemas = await asyncio.to_thread(graph_schemas, graph)  # pydantic work: keep the loop free
        return {"graph_id": record["graph_id"], **to_jsonable(schemas)}

    async def subgraphs(
        self,
        assistant_id: str,
        namespace: str | None = None,
        recurse: bool = False,
        visible: Visibility | None = None,
    ) -> dict[str, Any]:
        graph = await self._graph_of(await self._record_at(assistant_id, visible))
        try:
            found = [(ns, sub) async for ns, sub in graph.aget_subgraphs(namespace=namespace, recurse=recurse)]
        except NotImplementedError:
            raise InvalidRequest("The graph does not support visualization") from None

        def describe() -> dict[str, Any]:
            return {ns: graph_schemas(cast(Graph, sub)) for ns, sub in found}

        return cast(dict[str, Any], to_jsonable(await asyncio.to_thread(describe)))

    # --- versions ---

    async def versions(
        self, assistant_id: str, query: VersionsQuery, visible: Visibility | None = None
    ) -> list[dict[str, Any]]:
        record = await self._record_at(assistant_id, visible)
        found = await self._repository.versions(
            record["assistant_id"], query.metadata, query.limit, query.offset, visible
        )
        if not found:
            raise NotFound(f"Assistant {assistant_id!r} has no versions matching the request")
        return [public_assistant(version) for version in found]

    async def set_latest(self, assistant_id: str, version: int, visible: Visibility | None = None) -> dict[str, Any]:
        """Make a stored version current."""
        record = await self._record_at(assistant_id, visible)
        updated = await self._repository.set_latest(record["assistant_id"], version)
        self._changed(record["assistant_id"])
        if updated is None:
            raise NotFound(f"Assistant {assistant_id!r} has no version {version}")
        return public_assistant(updated)


async def init_default_assistants(service: AssistantService) -> AsyncIterator[AssistantService]:
    """Resource: every served graph has its default assistant before the first request."""
    await service.ensure_defaults()
    yield service
