"""Auth in the web layer: who sent a request (`AuthGate`, which the pipeline runs before every
handler) and what each route asks the auth module before it calls its service (the guards).

Every route of a resource asks the handler for (resource, action) with the value the LangGraph
API gives it, then hands the filter the handler returned (a `Visibility`) to its service, which
applies it in the database query: a record it hides is not found (404), a create over an id it
hides is a conflict (409), searches, counts and pages see only what it lets through. A handler may
change the value in place: the metadata a create or update stores, the namespace (and other fields)
a store operation uses. Ids in values are `uuid.UUID`s, namespaces tuples, as in the LangGraph API.

| routes | resource:action | value |
| --- | --- | --- |
| POST /threads | threads:create | thread_id, metadata, if_exists |
| POST /threads/search, /threads/count | threads:search | metadata, values, status, ids, limit, offset |
| GET /threads/{id}, state, history, GET /threads/{id}/stream | threads:read | thread_id |
| PATCH /threads/{id} | threads:update | thread_id, metadata |
| POST /threads/{id}/state | threads:update | thread_id |
| DELETE /threads/{id} | threads:delete | thread_id |
| POST /threads/{id}/copy | threads:read, then threads:create | thread_id; thread_id (the copy's), metadata |
| POST /threads/{id}/runs[/stream,/wait], /runs[...] | threads:create_run | thread_id (None: stateless), |
|  |  | assistant_id, metadata, multitask_strategy, if_not_exists, kwargs, ... |
| GET /threads/{id}/runs | threads:search | thread_id, metadata |
| GET .../runs/{run_id}, /join, /stream | threads:read | thread_id, run_id |
| DELETE .../runs/{run_id} | threads:delete | thread_id, run_id |
| POST .../runs/{run_id}/cancel, POST /runs/cancel | threads:update | thread_id, action, metadata {run_ids, status} |
| POST /assistants | assistants:create | assistant_id, graph_id, config, context, metadata, name, |
|  |  | description, if_exists |
| GET /assistants/{id}, graph, schemas, subgraphs, versions | assistants:read | assistant_id |
| PATCH /assistants/{id} | assistants:update | assistant_id, graph_id, config, context, metadata, name, description |
| POST /assistants/{id}/latest | assistants:update | assistant_id, version |
| DELETE /assistants/{id} | assistants:delete | assistant_id |
| POST /assistants/search, /assistants/count | assistants:search | graph_id, metadata, limit, offset |
| PUT /store/items | store:put | namespace, key, value, index, ttl |
| GET /store/items | store:get | namespace, key, refresh_ttl |
| DELETE /store/items | store:delete | namespace, key |
| POST /store/items/search | store:search | namespace (the prefix), filter, limit, offset, query, refresh_ttl |
| POST /store/namespaces | store:list_namespaces | namespace (the prefix), suffix, max_depth, limit, offset |
| POST /threads/{id}/runs/crons, /runs/crons | crons:create, then threads:create_run | payload, schedule, cron_id, |
|  |  | thread_id (None: stateless), user_id, end_time, metadata; as for a run |
| GET /runs/crons/{id} | crons:read | cron_id |
| PATCH /runs/crons/{id} | crons:update | cron_id, payload (the fields sent), schedule, metadata (if sent) |
| DELETE /runs/crons/{id} | crons:delete | cron_id |
| POST /runs/crons/search, /runs/crons/count | crons:search | assistant_id, thread_id, metadata, limit, offset |

A run is visible when its thread is: the run routes resolve the thread with the caller's filter
first. A run on an assistant that is not a graph's default also needs that assistant to pass the
caller's assistants:read filter. A run carries its caller in `config.configurable`
(`langgraph_auth_user`, `langgraph_auth_user_id`, `langgraph_auth_permissions`), so it executes
as them wherever it is executed; a client cannot send those keys.

A cron's filter applies to the cron's own metadata. Creating a cron asks what creating its runs asks
(threads:create_run with its thread, which must be visible, and the assistant's assistants:read), and
stores the caller with the cron: its runs, fired later by whichever process's scheduler, carry that
caller as a run created by them would.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from src.services.assistants.models import AssistantCreate, AssistantPatch, AssistantQuery, AssistantSearch
from src.services.assistants.service import AssistantService
from src.services.auth.errors import AuthModuleError
from src.services.auth.filters import Visibility
from src.services.auth.module import AuthModule, RequestParts
from src.services.auth.user import PERMISSIONS_KEY, RESERVED_CONFIGURABLE_KEYS, USER_ID_KEY, USER_KEY, AuthUser
from src.services.auth.visibility import ThreadVisibility, VisibleThreads
from src.services.crons.models import CronCreate, CronFilter, CronPatch, CronSearch
from src.services.errors import InvalidRequest
from src.services.runs.request import CancelSelection, RunRequest
from src.services.serialization import to_jsonable
from src.services.store.service import ItemPut, ItemSearch, NamespaceQuery
from src.services.threads.models import ThreadCreate, ThreadFilter, ThreadSearch
from src.services.validation import parse_uuid
from src.web.http import HttpRequest
from src.web.requests.crons import RUN_FIELDS as CRON_RUN_FIELDS
from src.web.requests.rules import BadRequest, check_json
from src.web.requests.runs import parse_run_request
from src.web.requests.store import (
    parse_delete,
    parse_key,
    parse_list_namespaces,
    parse_namespace,
    parse_put,
    parse_refresh_ttl,
)
from src.web.requests.store import parse_search as parse_store_search

# Answered without authentication: liveness, health (pool figures, no user data), metrics, the API's
# description. CORS preflights (OPTIONS) too: browsers send them without credentials.
PUBLIC_PATHS = frozenset({"/ok", "/health", "/metrics", "/docs", "/openapi.json"})
T = TypeVar("T")
# What a graph's default assistant carries: everyone may run it (as in the LangGraph API).
SYSTEM_ASSISTANT = "system"


def _uuid(value: str, field: str) -> uuid.UUID:
    return uuid.UUID(parse_uuid(value, field))


def _metadata(value: Mapping[str, Any], handler: str, default: dict[str, Any] | None) -> dict[str, Any] | None:
    """The metadata a handler left in `value`, as it will be stored (JSON under the input rules)."""
    metadata = value.get("metadata")
    if metadata is None:
        return default
    if not isinstance(metadata, Mapping):
        raise AuthModuleError(f"the auth handler {handler} set metadata to a {type(metadata).__name__}, not an object")
    stored = to_jsonable(metadata)
    try:
        check_json(stored, "metadata")
    except InvalidRequest as exc:
        raise AuthModuleError(f"the auth handler {handler} set metadata the server cannot store: {exc}") from None
    return dict(stored)


def refuse_reserved(configurable: Mapping[str, Any]) -> None:
    """422 for a request that sets the caller keys itself (with or without auth): the server sets them."""
    reserved = [key for key in RESERVED_CONFIGURABLE_KEYS if key in configurable]
    if reserved:
        raise InvalidRequest(
            f"config.configurable.{reserved[0]} is reserved: the server sets it to the authenticated caller"
        )


def caller_config(caller: AuthUser) -> dict[str, Any]:
    """The caller as a run carries it in config.configurable, stored with the run (or the cron whose
    runs execute as them), so that it executes as them in whichever process."""
    return {
        USER_KEY: caller.stored(),
        USER_ID_KEY: caller.identity,
        PERMISSIONS_KEY: list(caller.permissions),
    }


class AuthGate:
    """Authenticates every request but the public paths; the caller travels on as `request.caller`."""

    def __init__(self, auth: AuthModule) -> None:
        self._auth = auth

    @staticmethod
    def is_public(request: HttpRequest) -> bool:
        return request.method == "OPTIONS" or (request.path.rstrip("/") or "/") in PUBLIC_PATHS

    async def admit(self, request: HttpRequest) -> HttpRequest:
        if not self._auth.enabled or self.is_public(request):
            return request
        query: dict[str, str] = {}
        for name in request.query:
            try:
                value = request.param(name)
            except BadRequest:
                continue  # undecodable: the route refuses it, if it reads it
            if value is not None:
                query[name] = value
        raw_query = "&".join(f"{name}={value}" for name, values in request.query.items() for value in values)
        parts = RequestParts(
            method=request.method,
            path=request.path,
            path_params=request.path_params,
            query_params=query,
            query_string=raw_query,
            headers=request.headers,
            raw_body=request.body,
            read_json=lambda: request.json(empty={}),
        )
        return replace(request, caller=await self._auth.authenticate(parts))


class Guard:
    def __init__(self, auth: AuthModule) -> None:
        self._auth = auth

    async def ask(self, request: HttpRequest, resource: str, action: str, value: dict[str, Any]) -> Visibility | None:
        return await self._auth.authorize(request.caller, resource, action, value)


class ThreadGuard(Guard):
    """What the /threads routes ask; each returns what its service method takes."""

    async def create(self, request: HttpRequest, create: ThreadCreate) -> tuple[ThreadCreate, Visibility | None]:
        if not self._auth.enabled:
            return create, None
        thread_id = create.thread_id or str(uuid.uuid4())
        value = {"thread_id": uuid.UUID(thread_id), "metadata": create.metadata, "if_exists": create.if_exists}
        visible = await self.ask(request, "threads", "create", value)
        metadata = _metadata(value, "for threads:create", {}) or {}
        return replace(create, thread_id=thread_id, metadata=metadata), visible

    async def _where(self, request: HttpRequest, where: ThreadFilter, limit: int, offset: int) -> ThreadFilter:
        if not self._auth.enabled:
            return where
        value = {
            "metadata": where.metadata if where.metadata is not None else {},
            "values": where.values if where.values is not None else {},
            "status": where.status,
            "ids": [uuid.UUID(thread_id) for thread_id in where.ids] if where.ids is not None else None,
            "limit": limit,
            "offset": offset,
        }
        visible = await self.ask(request, "threads", "search", value)
        return replace(where, metadata=_metadata(value, "for threads:search", None) or None, visible=visible)

    async def search(self, request: HttpRequest, search: ThreadSearch) -> ThreadSearch:
        return replace(search, where=await self._where(request, search.where, search.limit, search.offset))

    async def count(self, request: HttpRequest, where: ThreadFilter) -> ThreadFilter:
        return await self._where(request, where, 0, 0)

    async def read(self, request: HttpRequest, thread_id: str) -> Visibility | None:
        if not self._auth.enabled:
            return None
        return await self.ask(request, "threads", "read", {"thread_id": _uuid(thread_id, "thread_id")})

    async def update(
        self, request: HttpRequest, thread_id: str, metadata: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], Visibility | None]:
        """The metadata to merge in (a patch's, as the handler left it) and the filter."""
        if not self._auth.enabled:
            return metadata or {}, None
        value: dict[str, Any] = {"thread_id": _uuid(thread_id, "thread_id")}
        if metadata is not None:
            value["metadata"] = metadata
        visible = await self.ask(request, "threads", "update", value)
        return _metadata(value, "for threads:update", {}) or {}, visible

    async def delete(self, request: HttpRequest, thread_id: str) -> Visibility | None:
        if not self._auth.enabled:
            return None
        return await self.ask(request, "threads", "delete", {"thread_id": _uuid(thread_id, "thread_id")})

    async def copy(
        self, request: HttpRequest, thread_id: str
    ) -> tuple[Visibility | None, str | None, dict[str, Any] | None]:
        """The source's filter, the copy's id and the metadata the create handler stamps on the copy."""
        if not self._auth.enabled:
            return None, None, None
        visible = await self.read(request, thread_id)
        new_thread_id = str(uuid.uuid4())
        value: dict[str, Any] = {"thread_id": uuid.UUID(new_thread_id), "metadata": {}, "if_exists": "raise"}
        await self.ask(request, "threads", "create", value)  # may the caller create threads at all
        return visible, new_thread_id, _metadata(value, "for threads:create", {})


class AssistantGuard(Guard):
    """What the /assistants routes ask."""

    def __init__(self, auth: AuthModule, assistants: AssistantService) -> None:
        super().__init__(auth)
        self._assistants = assistants

    def _id(self, assistant_id: str) -> uuid.UUID:
        # A graph id names its default assistant, as in the LangGraph API: handlers see the UUID.
        return uuid.UUID(self._assistants.assistant_id(assistant_id))

    async def create(self, request: HttpRequest, create: AssistantCreate) -> tuple[AssistantCreate, Visibility | None]:
        if not self._auth.enabled:
            return create, None
        assistant_id = create.assistant_id or str(uuid.uuid4())
        value = {
            "assistant_id": uuid.UUID(assistant_id),
            "graph_id": create.graph_id,
            "config": create.config or {},
            "context": create.context or {},
            "metadata": create.metadata,
            "name": create.name,
            "description": create.description,
            "if_exists": create.if_exists,
        }
        visible = await self.ask(request, "assistants", "create", value)
        metadata = _metadata(value, "for assistants:create", {}) or {}
        return replace(create, assistant_id=assistant_id, metadata=metadata), visible

    async def read(self, request: HttpRequest, assistant_id: str) -> Visibility | None:
        if not self._auth.enabled:
            return None
        return await self.ask(request, "assistants", "read", {"assistant_id": self._id(assistant_id)})

    async def update(
        self, request: HttpRequest, assistant_id: str, patch: AssistantPatch
    ) -> tuple[AssistantPatch, Visibility | None]:
        if not self._auth.enabled:
            return patch, None
        value = {
            "assistant_id": self._id(assistant_id),
            "graph_id": patch.graph_id,
            "config": patch.config,
            "context": patch.context,
            "metadata": patch.metadata,
            "name": patch.name,
            "description": patch.description,
        }
        visible = await self.ask(request, "assistants", "update", value)
        return replace(patch, metadata=_metadata(value, "for assistants:update", None)), visible

    async def set_latest(self, request: HttpRequest, assistant_id: str, version: int) -> Visibility | None:
        if not self._auth.enabled:
            return None
        value = {"assistant_id": self._id(assistant_id), "version": version}
        return await self.ask(request, "assistants", "update", value)

    async def delete(self, request: HttpRequest, assistant_id: str) -> Visibility | None:
        if not self._auth.enabled:
            return None
        return await self.ask(request, "assistants", "delete", {"assistant_id": self._id(assistant_id)})

    async def _query(self, request: HttpRequest, query: AssistantQuery, limit: int, offset: int) -> AssistantQuery:
        if not self._auth.enabled:
            return query
        value = {"graph_id": query.graph_id, "metadata": query.metadata, "limit": limit, "offset": offset}
        visible = await self.ask(request, "assistants", "search", value)
        return replace(query, metadata=_metadata(value, "for assistants:search", {}) or {}, visible=visible)

    async def search(self, request: HttpRequest, search: AssistantSearch) -> AssistantSearch:
        return replace(search, query=await self._query(request, search.query, search.limit, search.offset))

    async def count(self, request: HttpRequest, query: AssistantQuery) -> AssistantQuery:
        return await self._query(request, query, 0, 0)


def _rechecked(handler: str, parse: Callable[[dict[str, Any]], T], value: Mapping[str, Any], fields: Fields) -> T:
    """A store request rebuilt from what the handler left in its value (`fields`: request field to value
    key; other keys a handler adds are ignored), under the same rules as the client's: a namespace label
    with '.' would otherwise read as two labels, another namespace."""
    body: dict[str, Any] = {}
    for name, key in fields.items():
        item = value.get(key)
        body[name] = list(item) if isinstance(item, tuple) else item  # namespaces travel as lists
    try:
        return parse(body)
    except InvalidRequest as exc:
        raise InvalidRequest(f"the request as the auth handler {handler} changed it is invalid: {exc}") from None


Fields = Mapping[str, str]
PUT_FIELDS: Fields = {name: name for name in ("namespace", "key", "value", "index", "ttl")}
ITEM_FIELDS: Fields = {"namespace": "namespace", "key": "key"}
SEARCH_FIELDS: Fields = {
    "namespace_prefix": "namespace",
    **{name: name for name in ("filter", "limit", "offset", "query", "refresh_ttl")},
}
LIST_FIELDS: Fields = {"prefix": "namespace", **{name: name for name in ("suffix", "max_depth", "limit", "offset")}}


def _item(body: dict[str, Any]) -> tuple[tuple[str, ...], str, bool | None]:
    namespace = parse_namespace(body["namespace"], "namespace")
    return namespace, parse_key(body["key"]), parse_refresh_ttl(body.get("refresh_ttl"))


class StoreGuard(Guard):
    """What the /store routes ask: the handler may rewrite the namespace (or any field) in the value."""

    async def put(self, request: HttpRequest, item: ItemPut) -> tuple[ItemPut, Visibility | None]:
        if not self._auth.enabled:
            return item, None
        value = {
            "namespace": item.namespace,
            "key": item.key,
            "value": item.value,
            "index": item.index,
            "ttl": item.ttl,
        }
        visible = await self.ask(request, "store", "put", value)
        return _rechecked("for store:put", parse_put, value, PUT_FIELDS), visible

    async def get(
        self, request: HttpRequest, namespace: tuple[str, ...], key: str, refresh_ttl: bool | None
    ) -> tuple[tuple[str, ...], str, bool | None, Visibility | None]:
        if not self._auth.enabled:
            return namespace, key, refresh_ttl, None
        value = {"namespace": namespace, "key": key, "refresh_ttl": refresh_ttl}
        visible = await self.ask(request, "store", "get", value)
        fields = {**ITEM_FIELDS, "refresh_ttl": "refresh_ttl"}
        namespace, key, refresh_ttl = _rechecked("for store:get", _item, value, fields)
        return namespace, key, refresh_ttl, visible

    async def delete(
        self, request: HttpRequest, namespace: tuple[str, ...], key: str
    ) -> tuple[tuple[str, ...], str, Visibility | None]:
        if not self._auth.enabled:
            return namespace, key, None
        value = {"namespace": namespace, "key": key}
        visible = await self.ask(request, "store", "delete", value)
        namespace, key = _rechecked("for store:delete", parse_delete, value, ITEM_FIELDS)
        return namespace, key, visible

    async def search(self, request: HttpRequest, search: ItemSearch) -> tuple[ItemSearch, Visibility | None]:
        if not self._auth.enabled:
            return search, None
        value = {
            "namespace": search.namespace_prefix,
            "filter": search.filter,
            "limit": search.limit,
            "offset": search.offset,
            "query": search.query,
            "refresh_ttl": search.refresh_ttl,
        }
        visible = await self.ask(request, "store", "search", value)
        return _rechecked("for store:search", parse_store_search, value, SEARCH_FIELDS), visible

    async def list_namespaces(self, request: HttpRequest, query: NamespaceQuery) -> NamespaceQuery:
        if not self._auth.enabled:
            return query
        value = {
            "namespace": query.prefix,
            "suffix": query.suffix,
            "max_depth": query.max_depth,
            "limit": query.limit,
            "offset": query.offset,
        }
        await self.ask(request, "store", "list_namespaces", value)
        return _rechecked("for store:list_namespaces", parse_list_namespaces, value, LIST_FIELDS)


class RunGuard(Guard):
    """What the run routes ask: the thread's filter (threads:*), resolved before the run service is called."""

    def __init__(self, auth: AuthModule, threads: ThreadVisibility, assistants: AssistantService) -> None:
        super().__init__(auth)
        self._threads = threads
        self._assistants = assistants

    async def create(self, request: HttpRequest, thread_id: str | None, run: RunRequest) -> RunRequest:
        """The run to create: checked against threads:create_run (and the assistant's assistants:read),
        its metadata as the handler left it, its caller in its config."""
        configurable = run.config["configurable"]
        refuse_reserved(configurable)
        caller = request.caller
        if not self._auth.enabled or caller is None:
            return run
        run.metadata = await self.may_create(request, thread_id, run)
        run.thread_metadata = dict(run.metadata)
        configurable.update(caller_config(caller))
        return run

    async def may_create(self, request: HttpRequest, thread_id: str | None, run: RunRequest) -> dict[str, Any]:
        """NotFound unless the caller may create `run` on `thread_id` (threads:create_run, the thread's
        visibility unless the run creates it, the assistant's assistants:read); the run's metadata as the
        handler left it. Auth must be on."""
        assistant = await self._assistants.resolve(run.assistant_id)
        value = {
            "thread_id": _uuid(thread_id, "thread_id") if thread_id is not None else None,
            "assistant_id": uuid.UUID(assistant["assistant_id"]),
            "run_id": None,
            "status": "pending",
            "metadata": run.metadata,
            "prevent_insert_if_inflight": True,
            "multitask_strategy": run.multitask_strategy,
            "if_not_exists": run.if_not_exists,
            "after_seconds": 0,
            "kwargs": run.kwargs,
        }
        visible = await self.ask(request, "threads", "create_run", value)
        metadata = _metadata(value, "for threads:create_run", {}) or {}
        if thread_id is not None and visible is not None:
            await self._threads.require(thread_id, visible, missing_ok=run.if_not_exists == "create")
        if (assistant.get("metadata") or {}).get("created_by") != SYSTEM_ASSISTANT:
            seen = await self.ask(request, "assistants", "read", {"assistant_id": uuid.UUID(assistant["assistant_id"])})
            if seen is not None:
                await self._assistants.get(assistant["assistant_id"], seen)
        return metadata

    async def thread(
        self, request: HttpRequest, action: str, thread_id: str, extra: dict[str, Any] | None = None
    ) -> None:
        """NotFound unless the caller may `action` the thread (threads:<action>, value thread_id and `extra`)."""
        if not self._auth.enabled:
            return
        value = {"thread_id": _uuid(thread_id, "thread_id"), **(extra or {})}
        visible = await self.ask(request, "threads", action, value)
        if visible is not None:
            await self._threads.require(thread_id, visible)

    async def run(self, request: HttpRequest, action: str, thread_id: str, run_id: str) -> None:
        await self.thread(request, action, thread_id, {"run_id": _uuid(run_id, "run_id")})

    async def cancel(self, request: HttpRequest, thread_id: str, run_id: str, rollback: bool) -> None:
        extra = {
            "run_id": _uuid(run_id, "run_id"),
            "action": "rollback" if rollback else "interrupt",
            "metadata": {"run_ids": [_uuid(run_id, "run_id")], "status": None},
        }
        await self.thread(request, "update", thread_id, extra)

    async def cancel_many(
        self, request: HttpRequest, selection: CancelSelection, rollback: bool
    ) -> VisibleThreads | None:
        """For the run service's bulk cancel: which threads' runs the caller may cancel (None: all)."""
        if not self._auth.enabled:
            return None
        value = {
            "thread_id": uuid.UUID(selection.thread_id) if selection.thread_id else None,
            "action": "rollback" if rollback else "interrupt",
            "metadata": {
                "run_ids": sorted(uuid.UUID(run_id) for run_id in selection.run_ids) if selection.run_ids else None,
                "status": selection.status,
            },
        }
        visible = await self.ask(request, "threads", "update", value)
        return None if visible is None else self._threads.among(visible)


class CronGuard(Guard):
    """What the /runs/crons routes ask (crons:*). A cron creates runs as its creator, so creating one
    also asks what creating its runs asks (threads:create_run with the cron's thread, the thread's
    visibility, the assistant's assistants:read: RunGuard.may_create); its caller is stored with it."""

    def __init__(self, auth: AuthModule, runs: RunGuard, assistants: AssistantService) -> None:
        super().__init__(auth)
        self._runs = runs
        self._assistants = assistants

    async def create(self, request: HttpRequest, thread_id: str | None, create: CronCreate) -> CronCreate:
        """The cron to create: its metadata as the crons:create handler (then threads:create_run's) left
        it, in its payload too (its runs' metadata), its creator and their caller keys."""
        refuse_reserved((create.payload.get("config") or {}).get("configurable") or {})
        caller = request.caller
        if not self._auth.enabled or caller is None:
            return create
        cron_id = create.cron_id or str(uuid.uuid4())
        value = {
            "payload": copy.deepcopy(create.payload),
            "schedule": create.schedule,
            "cron_id": uuid.UUID(cron_id),
            "thread_id": _uuid(thread_id, "thread_id") if thread_id is not None else None,
            "user_id": caller.identity,
            "end_time": create.end_time,
            "metadata": create.metadata,
        }
        await self.ask(request, "crons", "create", value)
        metadata = _metadata(value, "for crons:create", {}) or {}
        body = {key: item for key, item in create.payload.items() if key in CRON_RUN_FIELDS}
        run = parse_run_request({**body, "metadata": metadata}, stateless=thread_id is None)
        metadata = await self._runs.may_create(request, thread_id, run)
        return replace(
            create,
            cron_id=cron_id,
            metadata=metadata,
            payload={**create.payload, "metadata": metadata},
            user_id=caller.identity,
            caller=caller_config(caller),
        )

    async def read(self, request: HttpRequest, cron_id: str) -> Visibility | None:
        if not self._auth.enabled:
            return None
        return await self.ask(request, "crons", "read", {"cron_id": _uuid(cron_id, "cron_id")})

    async def update(self, request: HttpRequest, cron_id: str, patch: CronPatch) -> tuple[CronPatch, Visibility | None]:
        """The patch (its metadata as the handler left it, in the payload too) and the filter."""
        refuse_reserved((patch.payload.get("config") or {}).get("configurable") or {})
        if not self._auth.enabled:
            return patch, None
        value: dict[str, Any] = {
            "cron_id": _uuid(cron_id, "cron_id"),
            "payload": copy.deepcopy(patch.payload),
            "schedule": patch.schedule,
        }
        if patch.metadata is not None:
            value["metadata"] = patch.metadata
        visible = await self.ask(request, "crons", "update", value)
        metadata = _metadata(value, "for crons:update", None)
        if metadata is not None:
            patch = replace(patch, metadata=metadata, payload={**patch.payload, "metadata": metadata})
        return patch, visible

    async def delete(self, request: HttpRequest, cron_id: str) -> Visibility | None:
        if not self._auth.enabled:
            return None
        return await self.ask(request, "crons", "delete", {"cron_id": _uuid(cron_id, "cron_id")})

    async def _where(self, request: HttpRequest, where: CronFilter, limit: int, offset: int) -> CronFilter:
        if not self._auth.enabled:
            return where
        assistant_id: uuid.UUID | str | None = where.assistant_id
        if where.assistant_id is not None:
            try:
                assistant_id = uuid.UUID(self._assistants.assistant_id(where.assistant_id))
            except InvalidRequest:
                pass  # names no assistant: the search finds nothing; the handler sees it as sent
        value = {
            "assistant_id": assistant_id,
            "thread_id": _uuid(where.thread_id, "thread_id") if where.thread_id is not None else None,
            "metadata": where.metadata if where.metadata is not None else {},
            "limit": limit,
            "offset": offset,
        }
        visible = await self.ask(request, "crons", "search", value)
        return replace(where, metadata=_metadata(value, "for crons:search", None) or None, visible=visible)

    async def search(self, request: HttpRequest, search: CronSearch) -> CronSearch:
        return replace(search, where=await self._where(request, search.where, search.limit, search.offset))

    async def count(self, request: HttpRequest, where: CronFilter) -> CronFilter:
        return await self._where(request, where, 0, 0)
