"""Threads: creating them, reading them and reading their state."""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.runnables import RunnableConfig

from src.services.errors import Conflict, InvalidRequest, ThreadNotFound
from src.services.graphs import GraphRegistry
from src.services.repository import Record, Repository
from src.services.serialization import to_jsonable

IF_EXISTS = ("raise", "do_nothing")


def parse_thread_id(value: Any, field: str = "thread_id") -> str:
    """Thread ids are UUIDs, as in the LangGraph API; return the canonical form."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidRequest(f"{field} must be a UUID, got {value!r}") from None


def require_dict(payload: Any, what: str = "request body") -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidRequest(f"{what} must be a JSON object, got {type(payload).__name__}")
    return payload


def optional_dict(payload: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = payload.get(key)
    if value is not None and not isinstance(value, dict):
        raise InvalidRequest(f"{key} must be an object, got {type(value).__name__}")
    return value


def reject_unknown(payload: dict[str, Any], known: frozenset[str], unsupported: frozenset[str] = frozenset()) -> None:
    for key, value in payload.items():
        if key in known or value is None or value is False:  # clients send unset options as null/false
            continue
        if key in unsupported:
            raise InvalidRequest(f"{key} is not supported by this server yet")
        raise InvalidRequest(f"unknown field {key!r}; expected one of {', '.join(sorted(known))}")


def public_thread(record: Record) -> dict[str, Any]:
    """A thread as the LangGraph API returns it."""
    return {
        "thread_id": record["thread_id"],
        "created_at": to_jsonable(record["created_at"]),
        "updated_at": to_jsonable(record["updated_at"]),
        "metadata": record["metadata"],
        "status": record["status"],
        "values": record["values"] if record["values"] is not None else {},
        "interrupts": record["interrupts"],
        "error": record.get("error"),
    }


def empty_state(thread_id: str) -> dict[str, Any]:
    return {
        "values": {},
        "next": [],
        "tasks": [],
        "metadata": {},
        "created_at": None,
        "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None, "checkpoint_map": None},
        "parent_checkpoint": None,
        "interrupts": [],
    }


def checkpoint_of(config: RunnableConfig | None) -> dict[str, Any] | None:
    if not config:
        return None
    configurable = config.get("configurable") or {}
    return {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
        "checkpoint_map": configurable.get("checkpoint_map"),
    }


class ThreadService:
    def __init__(self, repository: Repository, graphs: GraphRegistry) -> None:
        self._repository = repository
        self._graphs = graphs

    async def create(self, payload: Any) -> dict[str, Any]:
        body = require_dict(payload)
        reject_unknown(body, frozenset({"thread_id", "metadata", "if_exists"}), frozenset({"supersteps", "ttl"}))
        thread_id = parse_thread_id(body["thread_id"]) if body.get("thread_id") is not None else str(uuid.uuid4())
        metadata = optional_dict(body, "metadata") or {}
        if_exists = body.get("if_exists") or "raise"
        if if_exists not in IF_EXISTS:
            raise InvalidRequest(f"if_exists must be one of {', '.join(IF_EXISTS)}, got {if_exists!r}")
        created = await self._repository.create_thread(thread_id, metadata)
        if created is not None:
            return public_thread(created)
        if if_exists == "raise":
            raise Conflict(f"Thread {thread_id!r} already exists")
        return await self.get(thread_id)

    async def get_record(self, thread_id: str) -> Record:
        record = await self._repository.get_thread(parse_thread_id(thread_id))
        if record is None:
            raise ThreadNotFound(thread_id)
        return record

    async def get(self, thread_id: str) -> dict[str, Any]:
        return public_thread(await self.get_record(thread_id))

    async def state(self, thread_id: str) -> dict[str, Any]:
        record = await self.get_record(thread_id)
        graph_id = record["metadata"].get("graph_id")
        if graph_id is None or graph_id not in self._graphs:
            return empty_state(record["thread_id"])
        config: RunnableConfig = {"configurable": {"thread_id": record["thread_id"]}}
        graph = await self._graphs.get(graph_id, config)
        snapshot = await graph.aget_state(config)
        if snapshot.config is None:
            return empty_state(record["thread_id"])
        return {
            "values": to_jsonable(snapshot.values),
            "next": list(snapshot.next),
            "tasks": [
                {
                    "id": task.id,
                    "name": task.name,
                    "error": None if task.error is None else str(task.error),
                    "interrupts": to_jsonable(task.interrupts),
                    "checkpoint": None,
                    "state": None,
                    "result": to_jsonable(task.result),
                }
                for task in snapshot.tasks
            ],
            "metadata": to_jsonable(snapshot.metadata),
            "created_at": snapshot.created_at,
            "checkpoint": checkpoint_of(snapshot.config),
            "parent_checkpoint": checkpoint_of(snapshot.parent_config),
            "interrupts": to_jsonable(snapshot.interrupts),
        }
